// taskdist: Priority: higher SubmitOptions::priority first, FIFO among
// equals, with aging so that no task starves.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "../detail/concurrentqueue.hpp"
#include "../detail/ring.hpp"
#include "../distributor.hpp"

namespace taskdist {

/// One shared queue ordered by effective priority, taken by any worker.
/// Producers append to a lock-free inbox; the popping worker orders it.
///
/// Aging: a waiting task gains one level per `aging_step` waited. Since every
/// waiting task ages at the same rate, the order between two tasks never
/// changes while they wait: it is fixed at push time by the key
///   priority * aging_step - submit time
/// (larger first; FIFO among equal keys by a sequence number). So aging costs
/// nothing per pop, and tasks of one level stay in a FIFO of their own, and a task of priority p waits behind tasks of priority
/// q > p submitted at most (q - p) * aging_step after it, never forever.
/// aging_step == 0 turns aging off (strict priority; starvation possible).
/// priority * aging_step saturates at +-2^62 ns (about 146 years of aging):
/// tasks beyond it rank above (or below) every other task, and among
/// themselves run in submission order.
struct Priority {
    std::chrono::nanoseconds aging_step = std::chrono::milliseconds(10);

    template <class Item>
    class queue {
    public:
        queue(const Priority& settings, std::size_t) : step_(settings.aging_step.count()) {
            if (step_ < 0) throw std::invalid_argument("taskdist::Priority: aging_step must not be negative");
        }

        Placement push(Item&& item, const TaskInfo& info, WorkerSet) {
            std::int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(info.submitted_at.time_since_epoch()).count();
            std::int64_t key = step_ == 0 ? static_cast<std::int64_t>(info.priority) : scaled(info.priority) - t;
            // Producers only append to a lock-free inbox; the ordering work is
            // done by whichever worker pops next, so a producer never waits
            // for a worker (nor for another producer).
            if (!inbox_.enqueue(Entry{key, 0, info.priority, std::move(item)})) throw std::bad_alloc();
            return Placement::any();
        }

        std::optional<Item> try_pop(std::size_t) {
            // Unlocked emptiness check, so that idle workers poll without the lock.
            if (ordered_.load(std::memory_order_acquire) == 0 && inbox_.size_approx() == 0) return std::nullopt;
            std::lock_guard lock(mutex_);
            drain_inbox();
            if (ready_.empty()) return std::nullopt;
            // The level whose oldest task ranks first; after taking that task
            // its next one ranks lower, so it sinks back into the heap.
            std::pop_heap(ready_.begin(), ready_.end(), Before{});
            Level* level = ready_.back();
            std::optional<Item> out(std::move(level->fifo.front().item));
            level->fifo.pop_front();
            if (level->fifo.empty()) {
                ready_.pop_back();
                // Keep a few empty levels for reuse, not one per value ever seen.
                if (levels_.size() > kept_levels) {
                    if (last_ == level) last_ = nullptr;
                    levels_.erase(level->priority);
                }
            } else {
                std::push_heap(ready_.begin(), ready_.end(), Before{});
            }
            ordered_.store(ordered_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
            return out;
        }

        std::size_t queued(std::size_t) const noexcept { return 0; }

    private:
        struct Entry {
            std::int64_t key;
            std::uint64_t seq;  ///< FIFO among equal keys; given when ordered
            int priority;
            Item item;
        };
        struct Level {
            explicit Level(int p) : priority(p) {}
            int priority;
            detail::Ring<Entry> fifo;  // keeps its storage as the level fills and empties
        };
        static constexpr std::size_t kept_levels = 64;
        // std::push_heap keeps the "largest" on top: make "runs first" largest.
        // Compares levels by their oldest task; every level in ready_ has one.
        struct Before {
            bool operator()(const Level* a, const Level* b) const noexcept {
                const Entry& x = a->fifo.front();
                const Entry& y = b->fifo.front();
                if (x.key != y.key) return x.key < y.key;
                return x.seq > y.seq;
            }
        };

        /// Under the lock: moves every task pushed so far into its level, so
        /// that the pop that follows ranks it (all of them: a high-priority
        /// task must not wait behind an undrained backlog).
        void drain_inbox() {
            std::optional<Entry> e;
            Sink sink{e};
            std::size_t moved = 0;
            while (inbox_.try_dequeue(token_, sink)) {
                // Most tasks share the level of the one before.
                if (!last_ || last_->priority != e->priority) {
                    last_ = &levels_.try_emplace(e->priority, e->priority).first->second;
                }
                Level& level = *last_;
                // Within a level keys only fall (later submissions age less),
                // so a FIFO per level is already in order. Clocks on different
                // threads may disagree by a hair: never let a key rise.
                if (!level.fifo.empty()) e->key = std::min(e->key, level.fifo.back().key);
                e->seq = seq_++;
                level.fifo.push_back(std::move(*e));
                e.reset();
                if (level.fifo.size() == 1) {
                    ready_.push_back(&level);
                    std::push_heap(ready_.begin(), ready_.end(), Before{});
                }
                ++moved;
            }
            if (moved) ordered_.store(ordered_.load(std::memory_order_relaxed) + moved, std::memory_order_release);
        }

        // moodycamel dequeues by assignment; this assigns into an optional,
        // so Item needs no default constructor.
        struct Sink {
            std::optional<Entry>& out;
            Sink& operator=(Entry&& entry) noexcept(std::is_nothrow_move_constructible_v<Item>) {
                out.emplace(std::move(entry));
                return *this;
            }
        };

        // priority * step, saturated to +-2^62 so that subtracting a time
        // since the clock's epoch (well under 2^62 ns) cannot overflow.
        std::int64_t scaled(int priority) const noexcept {
            constexpr std::int64_t limit = std::int64_t{1} << 62;
            std::int64_t p = priority;
            if (p != 0 && (p > limit / step_ || p < -limit / step_)) return p > 0 ? limit : -limit;
            return p * step_;
        }

        std::int64_t step_;
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
    };
};

static_assert(Distributor<Priority>, "Priority must model taskdist::Distributor");

} // namespace taskdist
