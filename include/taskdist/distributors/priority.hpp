// taskdist: Priority: higher SubmitOptions::priority first, FIFO among
// equals, with aging so that no task starves.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "../detail/concurrentqueue.hpp"
#include "../detail/optional_filler.hpp"
#include "../detail/platform.hpp"
#include "../detail/ring.hpp"
#include "../detail/ticks.hpp"
#include "../distributor.hpp"

namespace taskdist {

/// One shared queue ordered by effective priority, taken by any worker.
/// Producers append to a lock-free inbox; the popping worker orders it.
///
/// Batches: when every waiting task is of one level (a flood of equal
/// priorities, the common case), a worker takes up to `batch` of them at once,
/// straight from the inbox, and runs them without the lock. A task of a
/// higher level pushed meanwhile is ranked against the batch before the
/// batch's next task runs; another worker takes a batch's tasks before any of
/// a lower level (or any at all, when it would idle). Within one level, FIFO
/// is approximate across workers, as with SharedQueue. Thread-safe; a
/// push() costs a clock read (none with aging off), an enqueue and, rarely,
/// one shared write.
///
/// Aging: a waiting task gains one level per `aging_step` waited. Since every
/// waiting task ages at the same rate, the order between two tasks never
/// changes while they wait: it is fixed at push time by the key
///   priority * aging_step - submit time
/// (larger first; FIFO among equal keys by a sequence number). So aging costs
/// nothing per pop, tasks of one level stay in a FIFO of their own, and a
/// task of priority p waits behind tasks of priority q > p submitted at most
/// (q - p) * aging_step after it, never forever. The inbox hands tasks over
/// one producer's at a time, so a task may reach its level after newer ones
/// from other producers: it still takes its place by its key. One that is
/// late by at most aging_step / 64 queues behind them (as if submitted with
/// the newest), which keeps the common case an append: across producers the
/// bound grows by that much, and FIFO among equals holds to that precision.
/// aging_step == 0 turns aging off (strict priority; starvation possible).
/// The submit time comes from the TSC where Linux keeps time with it; else,
/// where the coarse clock's resolution (1-4 ms on Linux, the kernel's tick)
/// is at most aging_step / 2, from that clock, and the bound above grows by
/// that resolution (under half a level): tasks submitted within one tick
/// count as submitted together. Otherwise from steady_clock.
/// priority * aging_step saturates at +-2^62 ns (about 146 years of aging):
/// tasks beyond it rank above (or below) every other task, and among
/// themselves run in submission order.
struct Priority {
    /// It reads its own clock in push() (see aging above).
    static constexpr bool reads_submit_time = false;
    std::chrono::nanoseconds aging_step = std::chrono::milliseconds(10);

    /// The most tasks of one level a worker takes at once (see queue).
    static constexpr std::size_t batch = 16;

    template <class Item>
    class queue {
    public:
        queue(const Priority& settings, std::size_t workers)
            : step_(settings.aging_step.count()),
              slack_(step_ / 64),
              coarse_(!ticks_.is_tsc() && detail::CoarseClock::resolution() <= step_ / 2),
              caches_(std::make_unique<Cache[]>(workers)),
              count_(workers) {
            if (step_ < 0) throw std::invalid_argument("taskdist::Priority: aging_step must not be negative");
        }

        Placement push(Item&& item, const TaskInfo& info, WorkerSet) {
            const std::int64_t key =
                step_ == 0 ? static_cast<std::int64_t>(info.priority) : scaled(info.priority) - submit_time();
            // Producers only append to a lock-free inbox; the ordering work is
            // done by whichever worker pops next, so a producer never waits
            // for a worker (nor for another producer).
            Entry e{key, 0, info.priority, std::move(item)};
            if (!inbox_.enqueue(std::move(e))) {
                // It fails before moving from e (it could not allocate): the
                // task goes back to the caller, who resolves it with the error.
                // NOLINTNEXTLINE(bugprone-use-after-move): enqueue() failed before moving from e
                give_back(item, std::move(e.item));
                throw std::bad_alloc();
            }
            // Keep inbox_top_ an upper bound of the inbox's levels (a write
            // only when this task is above it). Pairs with lower_top().
            detail::light_fence();
            int top = inbox_top_.load(std::memory_order_seq_cst);
            while (info.priority > top && !inbox_top_.compare_exchange_weak(top, info.priority, std::memory_order_seq_cst)) {
            }
            // A task above the level some worker took a batch of may outrank
            // that batch: those workers must rank it against theirs. (A task
            // of the same level or lower never does: it is newer.)
            if (info.priority > floor_.load(std::memory_order_seq_cst)) gen_.fetch_add(1, std::memory_order_acq_rel);
            return Placement::any();
        }

        std::optional<Item> try_pop(std::size_t w) {
            Cache& own = caches_[w];
            {
                std::lock_guard lock(own.mutex);
                // Nothing pushed since the batch was taken can outrank it.
                if (own.head != own.end && own.armed && gen_.load(std::memory_order_acquire) == own.gen) return take(own);
            }
            // Unlocked emptiness check, so that idle workers poll without the
            // lock. A task the lock's holder has taken out of the inbox but
            // not yet placed is in none of these: `moving_` covers it.
            if (inbox_.size_approx() == 0 && !moving_.load(std::memory_order_seq_cst) &&
                ordered_.load(std::memory_order_acquire) == 0 && !any_cached()) {
                return std::nullopt;
            }
            std::lock_guard lock(mutex_);
            moving_.store(true, std::memory_order_seq_cst);
            struct Placed {
                std::atomic<bool>& moving;
                ~Placed() { moving.store(false, std::memory_order_release); }
            } placed{moving_};
            return pop_ranked(w);
        }

        /// Worker w stops taking tasks for a while: its batch is ranked with
        /// everything else from now on, so the others take it in order.
        void hand_back(std::size_t w) noexcept {
            Cache& c = caches_[w];
            std::lock_guard lock(c.mutex);
            c.orphan = true;
            c.armed = false;
        }

        std::size_t queued(std::size_t) const noexcept { return 0; }

    private:
        struct Entry {
            std::int64_t key;
            std::uint64_t seq;  ///< FIFO among equal keys; given when ordered
            int priority;
            Item item;
        };
        using Run = detail::Ring<Entry>;
        /// A level's tasks: runs in order, whose merge is the level's order.
        struct Level {
            explicit Level(int p) : priority(p) {}
            int priority;
            Run fifo;  // the run most tasks join; keeps its storage as the level fills and empties
            /// Runs of tasks that reached the level after newer ones (see
            /// order()): rare, and about one per producer that fell behind.
            /// Never empty: dropped when they empty.
            std::vector<std::unique_ptr<Run>> late;
            std::size_t head = 0;  ///< the run of the first task: 0 for fifo, i for late[i - 1]

            Run& run(std::size_t i) noexcept { return i == 0 ? fifo : *late[i - 1]; }
            const Run& run(std::size_t i) const noexcept { return i == 0 ? fifo : *late[i - 1]; }
            bool empty() const noexcept { return run(head).empty(); }
            const Entry& front() const noexcept { return run(head).front(); }
            /// Hands the first task to `to`, as an rvalue, then drops it.
            template <class To>
            void pop_front(To&& to) {
                Run& r = run(head);
                to(std::move(r.front()));
                r.pop_front();
                if (!late.empty()) rehead();
            }
            /// Drops the late runs that emptied and finds the first task again.
            void rehead() noexcept {
                for (std::size_t i = late.size(); i-- > 0;) {
                    if (!late[i]->empty()) continue;
                    late[i].swap(late.back());
                    late.pop_back();
                }
                head = 0;
                for (std::size_t i = 1; i <= late.size(); ++i) {
                    if (run(head).empty() || ahead(late[i - 1]->front(), run(head).front())) head = i;
                }
            }
        };
        /// Tasks a worker took at once, all of one level, in order. Its
        /// owner pops them without mutex_ while `armed` and no push since
        /// may outrank them (gen_ == gen); everyone else, and the owner
        /// otherwise, ranks the first of them under mutex_.
        struct alignas(detail::cache_line) Cache {
            detail::SpinMutex mutex;
            /// end - head, readable without the lock.
            std::atomic<std::size_t> size{0};
            std::size_t head = 0;
            std::size_t end = 0;
            std::uint64_t gen = 0;
            int priority = 0;    ///< the level of the batch; written under mutex_ too
            bool armed = false;  ///< the owner may pop without ranking
            bool orphan = false; ///< handed back: ranked strictly, as if queued
            std::optional<Entry> slots[batch];
        };
        static constexpr std::size_t kept_levels = 64;

        /// x runs before y.
        static bool ahead(const Entry& x, const Entry& y) noexcept {
            if (x.key != y.key) return x.key > y.key;
            return x.seq < y.seq;
        }
        // std::push_heap keeps the "largest" on top: make "runs first" largest.
        // Compares levels by their oldest task; every level in ready_ has one.
        struct Before {
            bool operator()(const Level* a, const Level* b) const noexcept { return ahead(b->front(), a->front()); }
        };

        /// Puts a task back where push() took it from.
        static void give_back(Item& to, Item&& from) {
            if constexpr (std::is_move_assignable_v<Item>) {
                to = std::move(from);
            } else if constexpr (std::is_nothrow_move_constructible_v<Item>) {
                std::destroy_at(&to);
                std::construct_at(&to, std::move(from));
            }
            // Else a rebuild that threw would leave `to` destroyed, for the
            // caller to destroy again: the task is lost instead.
        }

        static std::optional<Item> take(Cache& c) {
            std::optional<Item> out(std::move(c.slots[c.head]->item));
            c.slots[c.head++].reset();
            c.size.store(c.end - c.head, std::memory_order_release);
            return out;
        }

        /// With c's lock held, its slots [0, end) just filled: a batch of
        /// `priority`'s level, taken when gen_ read `gen`.
        static void seal(Cache& c, int priority, std::uint64_t gen) noexcept {
            c.priority = priority;
            c.gen = gen;
            c.orphan = false;
            c.size.store(c.end, std::memory_order_release);
        }

        bool any_cached() const noexcept {
            for (std::size_t i = 0; i < count_; ++i) {
                if (caches_[i].size.load(std::memory_order_acquire) != 0) return true;
            }
            return false;
        }

        /// Under mutex_: the task that runs first among the levels and every
        /// batch, for worker w. Within one level, a batch whose owner is
        /// still taking tasks is left to it while the level has newer ones
        /// (FIFO among equals is approximate across workers, as with
        /// SharedQueue's batches); across levels, and for a batch handed
        /// back, the order is exact.
        std::optional<Item> pop_ranked(std::size_t w) {
            const std::uint64_t gen = gen_.load(std::memory_order_acquire);
            bool inbox_empty = false;
            if (ready_.empty() && caches_[w].size.load(std::memory_order_relaxed) == 0) {
                if (std::optional<Item> out = take_direct(w, gen, inbox_empty)) return out;
            }
            // Not after an empty take: a drain then takes only what was pushed
            // since, into the levels, and while the levels hold tasks every pop
            // comes here and drains again, so a flood that outran its workers
            // for a moment went through the levels from then on (W2 ran 4-7
            // times slower, its backlog moved once more and out of cache).
            if (!inbox_empty) drain_inbox();
            Level* level = ready_.empty() ? nullptr : ready_.front();
            const Entry* best = level ? &level->front() : nullptr;
            Cache* from = nullptr;  // the batch `best` heads, held locked
            std::unique_lock<detail::SpinMutex> held;
            for (std::size_t i = 0; i < count_; ++i) {
                Cache& c = caches_[i];
                if (c.size.load(std::memory_order_acquire) == 0) continue;
                std::unique_lock<detail::SpinMutex> lock(c.mutex);
                if (c.head == c.end) continue;
                const Entry& e = *c.slots[c.head];
                const bool shared_level = level && !from && i != w && !c.orphan && e.priority == level->priority;
                if (best && (shared_level || !ahead(e, *best))) continue;
                best = &e;
                from = &c;
                held = std::move(lock);
            }
            if (from) {
                std::optional<Item> out = take(*from);
                if (from == &caches_[w] && from->head != from->end) {
                    from->gen = gen;
                    from->orphan = false;  // its owner is back
                    from->armed = leads(*from, w);
                }
                update_floor();
                return out;
            }
            if (!level) return std::nullopt;
            std::pop_heap(ready_.begin(), ready_.end(), Before{});  // level is now ready_.back()
            std::optional<Item> out;
            level->pop_front([&out](Entry&& e) { out.emplace(std::move(e.item)); });
            std::size_t moved = 1;
            // The only level with tasks, and no batch of a higher one anywhere
            // (it would have ranked first): take a batch of it.
            Cache& own = caches_[w];
            const bool fill = ready_.size() == 1 && !level->empty() && own.size.load(std::memory_order_relaxed) == 0;
            if (fill) {
                std::lock_guard lock(own.mutex);
                own.head = 0;
                own.end = 0;
                while (own.end + 1 < batch && !level->empty()) {
                    level->pop_front([&own](Entry&& e) { own.slots[own.end++].emplace(std::move(e)); });
                }
                moved += own.end;
                seal(own, level->priority, gen);
            }
            if (level->empty()) {
                ready_.pop_back();
                // Keep a few empty levels for reuse, not one per value ever seen.
                if (levels_.size() > kept_levels) {
                    if (last_ == level) last_ = nullptr;
                    levels_.erase(level->priority);
                }
            } else {
                // Its next task ranks lower: it sinks back into the heap.
                std::push_heap(ready_.begin(), ready_.end(), Before{});
            }
            ordered_.store(ordered_.load(std::memory_order_relaxed) - moved, std::memory_order_release);
            update_floor();
            if (fill) {
                // A push above the batch's level since the drain either raised
                // inbox_top_ before reading the new floor (seen below) or read
                // it and moved gen_; one that did not raise it pushed below a
                // bound only lower_top() lowers, behind a heavy fence and a
                // drain: in the inbox now, and drained here.
                drain_inbox();
                std::lock_guard lock(own.mutex);
                own.armed = own.head != own.end && inbox_top_.load(std::memory_order_seq_cst) <= own.priority &&
                            leads(own, w);
            }
            return out;
        }

        /// Under mutex_, nothing being ranked (ready_ empty) and worker w's
        /// batch empty: a batch straight from the inbox, when every task
        /// taken is of the level inbox_top_ bounds the inbox by (a flood of
        /// one level, the common case), so those tasks skip the levels.
        /// Otherwise what was taken is ranked as drain_inbox() would, and
        /// the caller goes on. Tasks of other levels that wait in the inbox
        /// behind a flood are ranked when a worker reaches them there.
        std::optional<Item> take_direct(std::size_t w, std::uint64_t gen, bool& inbox_empty) {
            int top = inbox_top_.load(std::memory_order_seq_cst);
            if (!others_batches_of(w, top)) return std::nullopt;
            std::optional<Entry> got[batch];
            const std::size_t n = inbox_.try_dequeue_bulk(token_, detail::OptionalFiller<Entry>{got}, batch);
            inbox_empty = n == 0;
            if (n == 0) return std::nullopt;
            const int first = got[0]->priority;
            bool uniform = true;
            bool single = true;
            for (std::size_t k = 0; k < n; ++k) {
                uniform = uniform && got[k]->priority == top;
                single = single && got[k]->priority == first;
            }
            if (!uniform && single && first > top && others_batches_of(w, first)) {
                // Pushed before its producer raised the bound (a push enqueues
                // first): raise it here. Ranked, these would put the levels in
                // use, and while they hold tasks every pop drains the inbox
                // into them: a fresh pool's first push could send a whole
                // flood through them. Raising an upper bound is always safe.
                int seen = top;
                while (seen < first && !inbox_top_.compare_exchange_weak(seen, first, std::memory_order_seq_cst)) {
                }
                if (seen <= first) {  // the bound is `first` now (not above: no higher push in flight)
                    top = first;
                    uniform = true;
                }
            }
            if (!uniform) {
                for (std::size_t k = 0; k < n; ++k) order(std::move(*got[k]));
                ordered_.store(ordered_.load(std::memory_order_relaxed) + n, std::memory_order_release);
                // A full batch of one lower level: the flood's level fell,
                // and the bound is worth a heavy fence to bring down.
                if (single && n == batch && first < top) lower_top();
                return std::nullopt;
            }
            // Taken one producer's tasks at a time, the oldest may come last:
            // by key, stably (insertion: in order, n - 1 comparisons).
            std::size_t by_key[batch] = {};
            for (std::size_t k = 0; k < n; ++k) {
                std::size_t j = k;
                for (; j > 0 && got[by_key[j - 1]]->key < got[k]->key; --j) by_key[j] = by_key[j - 1];
                by_key[j] = k;
            }
            std::optional<Item> out(std::move(got[by_key[0]]->item));
            Cache& own = caches_[w];
            {
                std::lock_guard lock(own.mutex);
                own.head = 0;
                own.end = 0;
                for (std::size_t k = 1; k < n; ++k) {
                    Entry& e = *got[by_key[k]];
                    e.seq = seq_++;
                    own.slots[own.end++].emplace(std::move(e));
                }
                seal(own, top, gen);
            }
            update_floor();
            // A push above `top` since it was read raised inbox_top_ before
            // it read the floor: either it saw the new floor and moved gen_,
            // or this sees it (both sides are sequentially consistent).
            std::lock_guard lock(own.mutex);
            own.armed = own.head != own.end && inbox_top_.load(std::memory_order_seq_cst) == top;
            return out;
        }

        /// Under mutex_: every other worker's batch is of `level` and not
        /// handed back (else ranking is needed before a direct take).
        bool others_batches_of(std::size_t w, int level) {
            for (std::size_t i = 0; i < count_; ++i) {
                Cache& o = caches_[i];
                if (i == w || o.size.load(std::memory_order_acquire) == 0) continue;
                std::lock_guard lock(o.mutex);
                if (o.head != o.end && (o.orphan || o.priority != level)) return false;
            }
            return true;
        }

        /// Under mutex_: no task above the level the inbox holds now may
        /// stay above inbox_top_ unseen. Lowered to nothing, then every
        /// producer that read the old bound is made visible by the heavy
        /// fence and drained; the next ones raise it again.
        void lower_top() {
            inbox_top_.store(std::numeric_limits<int>::min(), std::memory_order_seq_cst);
            detail::heavy_fence();
            drain_inbox();
        }

        /// Under mutex_: e into its level, in order.
        void order(Entry&& e) {
            // Most tasks share the level of the one before.
            if (!last_ || last_->priority != e.priority) {
                last_ = &levels_.try_emplace(e.priority, e.priority).first->second;
            }
            Level& level = *last_;
            e.seq = seq_++;
            if (level.empty()) {
                level.fifo.push_back(std::move(e));
                ready_.push_back(&level);
                std::push_heap(ready_.begin(), ready_.end(), Before{});
                return;
            }
            // Later submissions age less, so keys mostly arrive falling: an
            // append. Not always: the inbox hands over one producer's tasks
            // at a time, and clocks on different threads may disagree by a
            // hair. Late by at most slack_, a task queues behind the newer
            // ones (cheap, and it loses at most that much of its aging).
            if (!level.fifo.empty()) {
                const std::int64_t last = level.fifo.back().key;
                if (e.key <= last + slack_) {
                    e.key = std::min(e.key, last);
                    level.fifo.push_back(std::move(e));
                    return;
                }
            }
            place_late(level, std::move(e));
        }

        /// Under mutex_: e, late (see order()), into a run it keeps in
        /// order: the one whose last task is the newest not newer than e,
        /// which keeps the runs few (one per producer, with producers that
        /// each push in order), or a new one. A place in `fifo` would cost a
        /// move of every newer task there, thousands in a backlog drained
        /// at once.
        void place_late(Level& level, Entry&& e) {
            const bool heads = e.key > level.front().key;  // it raises the level's rank
            constexpr std::size_t none = static_cast<std::size_t>(-1);
            std::size_t to = 0;  // fifo, when it is empty
            if (!level.fifo.empty()) {
                to = none;
                for (std::size_t i = 1; i <= level.late.size(); ++i) {
                    const std::int64_t last = level.late[i - 1]->back().key;
                    if (last >= e.key && (to == none || last < level.run(to).back().key)) to = i;
                }
                if (to == none) {
                    auto run = std::make_unique<Run>();
                    run->reserve(1);  // so that the push below cannot fail and leave it empty
                    level.late.push_back(std::move(run));
                    to = level.late.size();
                }
            }
            level.run(to).push_back(std::move(e));
            if (heads) {
                level.head = to;
                std::make_heap(ready_.begin(), ready_.end(), Before{});
            }
        }

        /// Under mutex_ and c's lock, c being worker w's non-empty batch:
        /// nothing else waiting runs before its first task, by the rules of
        /// pop_ranked().
        bool leads(const Cache& c, std::size_t w) {
            const Entry& e = *c.slots[c.head];
            // The best level, and if that is e's own, the best other one: one
            // of the heap root's two children.
            for (std::size_t i = 0; i < std::min<std::size_t>(ready_.size(), 3); ++i) {
                const Entry& top = ready_[i]->front();
                if (top.priority != e.priority && ahead(top, e)) return false;
                if (i == 0 && top.priority != e.priority) break;
            }
            for (std::size_t i = 0; i < count_; ++i) {
                Cache& o = caches_[i];
                if (i == w || o.size.load(std::memory_order_acquire) == 0) continue;
                std::lock_guard lock(o.mutex);
                if (o.head == o.end) continue;
                const Entry& x = *o.slots[o.head];
                if ((o.orphan || x.priority != e.priority) && ahead(x, e)) return false;
            }
            return true;
        }

        /// Under mutex_: the lowest level any batch holds, for push().
        void update_floor() noexcept {
            int floor = std::numeric_limits<int>::max();
            for (std::size_t i = 0; i < count_; ++i) {
                if (caches_[i].size.load(std::memory_order_acquire) != 0) floor = std::min(floor, caches_[i].priority);
            }
            if (floor_.load(std::memory_order_relaxed) != floor) floor_.store(floor, std::memory_order_seq_cst);
        }

        /// Under the lock: moves every task pushed so far into its level, so
        /// that the pop that follows ranks it (all of them: a high-priority
        /// task must not wait behind an undrained backlog). Bounded by twice
        /// what the inbox held when it began, and a batch: every push that
        /// finished before it, unless other producers add more than that
        /// meanwhile (producers' sub-queues are read in turn, not in push
        /// order). Unbounded, a drain chased producers that push as fast as
        /// it moves their tasks, holding mutex_ while no task ran. What it
        /// leaves, the next pop drains.
        void drain_inbox() {
            std::optional<Entry> e;
            detail::OptionalFiller<Entry> sink{&e};
            std::size_t moved = 0;
            const std::size_t most = 2 * inbox_.size_approx() + batch;
            while (moved < most && inbox_.try_dequeue(token_, sink)) {
                order(std::move(*e));
                e.reset();
                ++moved;
            }
            if (moved) ordered_.store(ordered_.load(std::memory_order_relaxed) + moved, std::memory_order_release);
        }

        /// Nanoseconds, for aging: from the TSC where Linux keeps time with it
        /// (precise and cheap), else from the coarse clock where its error
        /// is under half a level, else from steady_clock. Producers read it
        /// for every task, and a precise steady_clock read costs 70-115 ns
        /// on a contended core on a VM (see CoarseClock): W2 ran 300-330 ns
        /// a task with it, 120-130 without.
        std::int64_t submit_time() const noexcept {
            if (coarse_) return detail::CoarseClock::now();
            return static_cast<std::int64_t>(ticks_.to_ns(ticks_.now()));
        }

        // priority * step, saturated to +-2^62 so that subtracting a time
        // since the clock's epoch (well under 2^62 ns) cannot overflow.
        std::int64_t scaled(int priority) const noexcept {
            constexpr std::int64_t limit = std::int64_t{1} << 62;
            std::int64_t p = priority;
            if (p != 0 && (p > limit / step_ || p < -limit / step_)) return p > 0 ? limit : -limit;
            return p * step_;
        }

        std::int64_t step_;
        std::int64_t slack_;  ///< how late a task may reach its level and queue behind newer ones (see order())
        detail::Ticks ticks_ = detail::Ticks::calibrated();
        bool coarse_;  ///< submit_time() reads detail::CoarseClock
        moodycamel::ConcurrentQueue<Entry> inbox_;
        moodycamel::ConsumerToken token_{inbox_};  // used under mutex_ only
        std::mutex mutex_;  // a drain may hold it long: contenders should sleep
        // One FIFO per priority level in use and a heap of the non-empty
        // ones: a push is a map lookup and an append, a pop is O(log levels),
        // whatever the backlog.
        std::map<int, Level> levels_;
        std::vector<Level*> ready_;
        Level* last_ = nullptr;  ///< the level drain_inbox() used last
        std::uint64_t seq_ = 0;
        std::atomic<std::size_t> ordered_{0};  ///< tasks in the levels (not the inbox)
        std::atomic<bool> moving_{false};      ///< mutex_'s holder may hold tasks in transit
        std::unique_ptr<Cache[]> caches_;
        std::size_t count_;
        // Read by every push, written when batches change: a line of their own.
        alignas(detail::cache_line) std::atomic<int> floor_{std::numeric_limits<int>::max()};
        std::atomic<std::uint64_t> gen_{0};  ///< bumped by a push above floor_
        /// At least the level of every task in the inbox (raised by pushes,
        /// lowered by lower_top()).
        std::atomic<int> inbox_top_{std::numeric_limits<int>::min()};
    };
};

static_assert(Distributor<Priority>, "Priority must model taskdist::Distributor");

} // namespace taskdist
