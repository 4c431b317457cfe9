// taskdist: the Distributor concept (the policy deciding which worker runs
// each task), the read-only worker view a policy decides from, and
// PerWorkerQueues, a building block for policies that give every worker a
// queue of its own.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>

#include "detail/platform.hpp"
#include "detail/ring.hpp"
#include "detail/worker_slot.hpp"

namespace taskdist {

/// What a distributor may know about a task when it is submitted.
struct TaskInfo {
    static constexpr std::size_t no_worker = static_cast<std::size_t>(-1);
    int priority = 0;
    std::optional<std::uint64_t> key;
    std::chrono::steady_clock::time_point submitted_at;
    /// 1 for a new task; k for its k-th attempt after a retry.
    unsigned attempt = 1;
    /// On a retry: the worker the last attempt failed on, which a policy
    /// should avoid when another worker is available. no_worker otherwise.
    std::size_t previous_worker = no_worker;
};

/// Where a pushed task went: to one worker's queue, or to a queue that any
/// worker may take from. The pool uses it to wake the right sleeper.
struct Placement {
    static constexpr std::size_t any_worker = static_cast<std::size_t>(-1);
    std::size_t worker = any_worker;

    static constexpr Placement any() noexcept { return {}; }
    static constexpr Placement on(std::size_t w) noexcept { return Placement{w}; }
    constexpr bool is_any() const noexcept { return worker == any_worker; }
};

/// A read-only view of one worker, valid during the call it was passed to.
/// Its figures are live and may change at once; a policy uses them as hints.
class WorkerView {
public:
    explicit WorkerView(const detail::WorkerSlot* slot, std::size_t index) noexcept : slot_(slot), index_(index) {}

    std::size_t index() const noexcept { return index_; }
    /// Tasks this worker is running now: 0 or 1.
    std::uint64_t running() const noexcept { return slot_->running(); }
    /// Tasks this worker has resolved so far.
    std::uint64_t resolved() const noexcept { return slot_->resolved(); }
    /// False while the worker is down (its state is being rebuilt after a
    /// failure): a policy should send new tasks elsewhere when it can.
    bool available() const noexcept { return slot_->down.load(std::memory_order_acquire) == 0; }

private:
    const detail::WorkerSlot* slot_;
    std::size_t index_;
};

/// The pool's current workers, as a policy sees them.
class WorkerSet {
public:
    WorkerSet(const detail::WorkerSlot* slots, std::size_t count) noexcept : slots_(slots), count_(count) {}
    std::size_t size() const noexcept { return count_; }
    WorkerView operator[](std::size_t i) const noexcept { return WorkerView(slots_ + i, i); }

    /// Whether a policy may place a task on worker w: it is available and,
    /// when `avoid` names another available worker, it is not `avoid`. When
    /// no worker is available every worker is eligible, so a task always
    /// has somewhere to go (a down worker re-dispatches what reaches it).
    bool eligible(std::size_t w, std::size_t avoid = TaskInfo::no_worker) const noexcept {
        if (!(*this)[w].available()) return available_count() == 0;
        if (w != avoid) return true;
        for (std::size_t i = 0; i < count_; ++i) {
            if (i != w && (*this)[i].available()) return false;
        }
        return true;
    }

    std::size_t available_count() const noexcept {
        std::size_t n = 0;
        for (std::size_t i = 0; i < count_; ++i) n += (*this)[i].available() ? 1 : 0;
        return n;
    }

private:
    const detail::WorkerSlot* slots_;
    std::size_t count_;
};

namespace detail {
/// A move-only stand-in for the pool's internal task type, used to check a
/// distributor without naming a pool.
struct ProbeItem {
    ProbeItem() = delete;
    explicit ProbeItem(int) {}
    ProbeItem(ProbeItem&&) noexcept = default;
    ProbeItem& operator=(ProbeItem&&) noexcept = default;
};
} // namespace detail

/// A distributor decides which worker runs each task and holds the tasks
/// until then. A type D models Distributor when:
///
///  1. D is default-constructible and copyable: D is the policy's settings,
///     so `WorkerPool<T, R, D>` needs no settings argument, and the pool keeps
///     its own copy.
///  2. D has a member template `queue<Item>`: the pending-task store of one
///     pool. Item is the pool's internal task type: opaque, move-only, not
///     default-constructible. A template, because only the pool knows Item,
///     and storing Item by value is what keeps submit free of allocations.
///  3. `queue<Item>` is constructible from (const D&, std::size_t workers):
///     the settings and the number of worker slots, fixed for the pool's
///     life: the most workers it can have (PoolOptions::max_workers). Slots
///     [0, WorkerSet::size()) have workers now; the pool grows and shrinks
///     from the top, so a policy learns of workers joining and leaving
///     through the WorkerSet each push() gets.
///  4. `q.push(Item&&, const TaskInfo&, WorkerSet) -> Placement` takes the
///     task and says where it went, so the pool wakes only a worker that can
///     take it. Called concurrently from any thread. If it throws, it must not
///     have kept the item (the pool then resolves the handle with the error).
///     A policy should honour `workers.eligible(w, info.previous_worker)`:
///     send nothing to a worker that is down, and a retried task elsewhere
///     than where it failed, when it can. (It is not required for
///     correctness: the pool re-dispatches what reaches a down worker.)
///  5. `q.try_pop(std::size_t w) -> std::optional<Item>` gives worker `w` its
///     next task, or nothing. Called by worker w's thread, or, for a slot
///     whose worker was scaled away, by the pool handing its tasks to the
///     workers that stay; always one caller per slot at a time (a new thread
///     takes over a slot only after the previous one stopped popping),
///     concurrently with push() and with other slots. After a push that returned
///     on(w) or any(), a try_pop by that worker (any worker, for any()) that
///     starts after push returned must not miss the task unless another
///     worker took it: the pool's sleep protocol relies on this.
///  6. `q.queued(std::size_t w) const -> std::size_t`: tasks waiting for worker
///     w alone (0 for shared queues); for statistics and for policies that
///     read load. Called from any thread.
///  7. Optional: `q.hand_back(std::size_t w) noexcept`, for a policy that
///     lets worker w hold tasks the others cannot see through queued(w) (as
///     SharedQueue's per-worker cache does). The pool calls it from worker
///     w's thread when w stops taking tasks for a while (it is scaled away,
///     or is down after a WorkerFault), then wakes a sleeper: the policy
///     makes those tasks reachable by the other workers' try_pop.
///  8. Optional: `q.done(std::size_t w) noexcept`: worker w's task (the one
///     its last try_pop gave) ended, just before its outcome is published.
///     Called from worker w's thread (by the pool's supervisor for a hung
///     worker's, once that thread is abandoned), for a policy that counts
///     what runs (PerWorkerQueues::load(), read by LeastBusy and Sticky).
///  9. Optional: `q.try_steal(std::size_t w) -> std::optional<Item>`, for a
///     policy that places tasks on one worker but lets any worker run them
///     (LeastBusy: PerWorkerQueues::steal()). The pool calls it only from the
///     loop of worker w's own thread, while w is active and healthy and has
///     found nothing in try_pop(w), before it sleeps; never on behalf of a
///     slot it sweeps, nor of a down worker. What it returns is w's task
///     from then on (done(w) follows it). A retry taken this way may reach
///     the worker it failed on: the pool sends it round once, as any retry
///     that arrives there. With try_steal, a worker that takes a task while
///     queued(w) > 0 wakes a sleeping worker: one that looked while w was
///     between tasks may have left w's queue to w and gone to sleep.
template <class D, class Item>
concept DistributorFor =
    std::default_initializable<D> && std::copy_constructible<D> &&                        // 1
    requires { typename D::template queue<Item>; } &&                                     // 2
    std::constructible_from<typename D::template queue<Item>, const D&, std::size_t> &&   // 3
    requires(typename D::template queue<Item>& q, const typename D::template queue<Item>& cq, Item&& item,
             const TaskInfo& info, WorkerSet workers, std::size_t w) {
        { q.push(std::move(item), info, workers) } -> std::same_as<Placement>;             // 4
        { q.try_pop(w) } -> std::same_as<std::optional<Item>>;                             // 5
        { cq.queued(w) } -> std::convertible_to<std::size_t>;                              // 6
    };

/// Whether policy D reads TaskInfo::submitted_at. True unless D declares
/// `static constexpr bool reads_submit_time = false;`: the pool then reads
/// the clock at submit only for the tasks whose queue wait it samples
/// (PoolOptions::wait_sampling), and submitted_at of the others is the
/// clock's epoch.
template <class D>
inline constexpr bool reads_submit_time = [] {
    if constexpr (requires { D::reads_submit_time; }) {
        return static_cast<bool>(D::reads_submit_time);
    } else {
        return true;
    }
}();

/// A policy usable with any task type; every shipped distributor is checked
/// against it with a static_assert.
template <class D>
concept Distributor = DistributorFor<D, detail::ProbeItem>;

/// One FIFO queue per worker, for distributors that pick a worker at submit
/// time. A custom distributor can hold one and implement push() only.
/// Thread-safe; try_pop(w) is meant for worker w's thread. Producers append to a lane's
/// inbox under a short spin lock; its worker takes the whole inbox at once
/// and then pops without the lock, so producer and worker meet on the lock
/// once per batch, not once per task.
template <class Item>
class PerWorkerQueues {
public:
    explicit PerWorkerQueues(std::size_t workers)
        : lanes_(std::make_unique<Lane[]>(workers)), owned_(std::make_unique<Owned[]>(workers)), count_(workers) {}

    std::size_t lanes() const noexcept { return count_; }

    void push(std::size_t w, Item&& item) {
        Lane& l = lanes_[w];
        std::lock_guard lock(l.mutex);
        l.inbox.push_back(std::move(item));
        // Under the lock: the batch the worker takes, and so what it counts
        // as left, follows this, so load() never counts a task out before in.
        l.pushed.fetch_add(1, std::memory_order_release);
    }

    std::optional<Item> try_pop(std::size_t w) {
        Lane& l = lanes_[w];
        Owned& o = owned_[w];
        // Uncontended (one popper per lane), but a lane handed from a
        // departing worker to the pool's sweep stays safe whoever pops.
        std::lock_guard own(o.mutex);
        // The pool says done() after each attempt; a popped task that never
        // ran (expired, cancelled or discarded while queued, or sent on to
        // another worker) ends here.
        done(w);
        detail::Ring<Item>& taken = o.taken;
        if (taken.empty()) {
            // Unlocked emptiness check: an idle worker polls without the lock.
            if (load(w) == 0) return std::nullopt;
            std::lock_guard lock(l.mutex);
            taken.swap(l.inbox);
            if (taken.empty()) return std::nullopt;
        }
        std::optional<Item> out(std::move(taken.front()));
        taken.pop_front();
        o.pending.store(true, std::memory_order_relaxed);
        return out;
    }

    /// For a policy that lets any worker run any task (LeastBusy): worker w,
    /// out of tasks of its own, takes the newer half (at least one) of the
    /// longest queue whose worker is running a task, keeps them as its own
    /// and returns the first. A queue whose worker is between tasks (or
    /// asleep and being woken for them) is left to it: taking those would
    /// gather a trickle of tasks onto whichever worker spins, and waste the
    /// wake. Nothing if no queue qualifies, its owner is popping at that
    /// moment (stealing is a chance, never a wait), there is no memory for
    /// the tasks, or Item's move can throw (a move failing halfway would
    /// leave holes in both queues). For worker w's thread, as try_pop(w).
    std::optional<Item> steal(std::size_t w) {
        if constexpr (!std::is_nothrow_move_constructible_v<Item>) {
            (void)w;
            return std::nullopt;
        } else {
            std::size_t victim = w;
            std::size_t most = 0;
            for (std::size_t i = 1; i < count_; ++i) {
                const std::size_t v = w + i < count_ ? w + i : w + i - count_;
                // The count first, on the line producers already share; the
                // owner's busy line only for a queue worth taking from.
                const std::size_t l = load(v);
                if (l < 2 || !owned_[v].pending.load(std::memory_order_acquire)) continue;
                const std::size_t q = l - 1;  // less the task it runs
                if (q > most) {
                    victim = v;
                    most = q;
                }
            }
            if (most == 0) return std::nullopt;
            Owned& o = owned_[w];
            // Own lock first, blocking, then the victim's only if free: a
            // thief never waits while holding another worker's lock, so two
            // thieves robbing each other cannot deadlock.
            std::lock_guard own(o.mutex);
            done(w);
            if (o.taken.empty()) {
                try {
                    // Room first, so that nothing allocates under the
                    // victim's locks (its producers spin on one of them).
                    o.taken.reserve((most + 1) / 2);
                } catch (const std::bad_alloc&) {
                    return std::nullopt;
                }
                Owned& vo = owned_[victim];
                std::unique_lock robbed(vo.mutex, std::try_to_lock);
                if (!robbed.owns_lock()) return std::nullopt;
                Lane& vl = lanes_[victim];
                std::lock_guard lock(vl.mutex);
                // The victim's queue is its batch (oldest first) then its
                // inbox: the newer half is the inbox's back, then the batch's;
                // as much of it as the room made above holds.
                const std::size_t in_inbox = vl.inbox.size();
                const std::size_t k = std::min((vo.taken.size() + in_inbox + 1) / 2, o.taken.capacity());
                const std::size_t from_inbox = std::min(k, in_inbox);
                if (k == 0) return std::nullopt;
                vo.taken.move_back_to(o.taken, k - from_inbox);
                vl.inbox.move_back_to(o.taken, from_inbox);
                // The victim's count first: a reader may see k short for a
                // moment, never k over (which would make an idle worker look
                // busy).
                vo.left.fetch_add(k, std::memory_order_release);
                lanes_[w].pushed.fetch_add(k, std::memory_order_release);
            }
            std::optional<Item> out(std::move(o.taken.front()));
            o.taken.pop_front();
            o.pending.store(true, std::memory_order_relaxed);
            return out;
        }
    }

    /// Worker w's last task ended: it leaves load(). Idempotent. Called by
    /// whoever pops for slot w (its worker, or the pool while it has none),
    /// so by one thread at a time.
    void done(std::size_t w) noexcept {
        Owned& o = owned_[w];
        if (o.pending.load(std::memory_order_relaxed)) {
            // The count first: queued() may then read one short for a moment,
            // never one over (which would make an idle worker look busy).
            // A read-modify-write: a thief adds to it at the same time (the
            // pool calls done() after each attempt without o.mutex).
            o.left.fetch_add(1, std::memory_order_release);
            o.pending.store(false, std::memory_order_release);
        }
    }

    /// Tasks for worker w: in its inbox and in the batch it took.
    std::size_t queued(std::size_t w) const noexcept {
        // `pending` before the count: seeing it cleared means seeing the
        // count that done() lowered before clearing it.
        const std::size_t running = owned_[w].pending.load(std::memory_order_acquire) ? 1 : 0;
        const std::size_t all = load(w);
        return all > running ? all - running : 0;
    }

    /// queued(w), plus the task worker w popped last until done(w) (the one
    /// it is running): two counters, a line each, whichever distributor asks
    /// (the queue and the worker's run counters are not read).
    std::size_t load(std::size_t w) const noexcept {
        // Tasks in minus tasks out, in that order: a task that leaves between
        // the two reads makes the figure short, never over.
        const std::size_t in = lanes_[w].pushed.load(std::memory_order_acquire);
        const std::size_t out = owned_[w].left.load(std::memory_order_acquire);
        return in > out ? in - out : 0;
    }

    /// The eligible worker with the fewest queued + running tasks (load()),
    /// scanning from `start` so that ties spread instead of piling onto
    /// worker 0.
    std::size_t least_loaded(const WorkerSet& workers, std::size_t start,
                             std::size_t avoid = TaskInfo::no_worker) const noexcept {
        const std::size_t n = workers.size();
        std::size_t best = start % n;
        std::size_t best_load = static_cast<std::size_t>(-1);
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t w = (start + i) % n;
            if (!workers.eligible(w, avoid)) continue;
            const std::size_t l = load(w);
            if (l < best_load) {
                best = w;
                best_load = l;
                if (l == 0) break;
            }
        }
        return best;
    }

private:
    struct alignas(detail::cache_line) Lane {
        detail::SpinMutex mutex;
        detail::Ring<Item> inbox;
        /// Tasks ever placed here: pushed, or stolen by this lane's worker.
        std::atomic<std::size_t> pushed{0};
    };
    // The popping side's, on lines of their own: producers never touch them.
    struct alignas(detail::cache_line) Owned {
        detail::SpinMutex mutex;
        detail::Ring<Item> taken;
        std::atomic<bool> pending{false};  ///< the last task popped is still in load()
        /// Tasks that left load(): done, or stolen from this lane. Apart from
        /// `pushed`, so that the worker's count per task does not pull the
        /// producers' line over (W2 RoundRobin: 15% of the time per task).
        std::atomic<std::size_t> left{0};
    };
    std::unique_ptr<Lane[]> lanes_;
    std::unique_ptr<Owned[]> owned_;
    std::size_t count_;
};

} // namespace taskdist
