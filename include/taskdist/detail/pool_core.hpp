// taskdist: the engine shared by WorkerPool and ThreadPool: worker threads,
// the sleep/wake protocol, accounting, statistics and shutdown.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../distributor.hpp"
#include "../errors.hpp"
#include "../options.hpp"
#include "../stats.hpp"
#include "../task_context.hpp"
#include "../task_handle.hpp"
#include "park.hpp"
#include "platform.hpp"
#include "worker_slot.hpp"

namespace taskdist::detail {

/// What the pool queues for one task: the payload, the handle's state (empty
/// for post()), and when it was submitted (for queue-wait statistics).
template <class Payload, class State>
struct Job {
    Payload payload;
    StateRef<State> state;
    std::int64_t submitted_ns;
};

inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// The pool whose worker the current thread is, if any: lets calls that
/// would wait for themselves fail with WouldDeadlock instead of hanging.
inline thread_local const void* current_pool = nullptr;

/// A counter incremented by many threads: 16 cache-line stripes, a stripe
/// per thread, so producers do not fight over one line. Reading sums them.
class StripedCounter {
public:
    void add(std::uint64_t n) noexcept { stripes_[mine()].v.fetch_add(n, std::memory_order_seq_cst); }
    void sub(std::uint64_t n) noexcept { stripes_[mine()].v.fetch_sub(n, std::memory_order_seq_cst); }
    std::uint64_t sum() const noexcept {
        std::uint64_t s = 0;
        for (const auto& st : stripes_) s += st.v.load(std::memory_order_seq_cst);
        return s;
    }

private:
    static constexpr std::size_t count = 16;
    static std::size_t mine() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local std::size_t index = next.fetch_add(1, std::memory_order_relaxed) % count;
        return index;
    }
    struct alignas(cache_line) Stripe {
        std::atomic<std::uint64_t> v{0};
    };
    Stripe stripes_[count];
};

inline void print_task_error(const char* what, std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "taskdist: %s: %s\n", what, ex.what());
    } catch (...) {
        std::fprintf(stderr, "taskdist: %s: an exception not derived from std::exception\n", what);
    }
}

/// The engine. Invoker is called as invoker(item, ctx) on a worker thread:
/// it runs the task and, if the item has a state, claims it and stores the
/// value; exceptions propagate to the core, which stores or reports them.
///
/// Lifetime: owned by a shared_ptr that the front object and every worker
/// thread hold, so a worker never outlives the state it touches.
///
/// Accounting: `submitted` counts accepted tasks (striped, seq_cst); each
/// slot counts started / completed / failed for its own worker. A pool is
/// balanced when every accepted task has resolved; wait_idle() and shutdown
/// wait for that. Reading resolved before started before submitted makes
/// every derived figure non-negative, and the snapshot identity exact.
template <class Item, class Dist, class Invoker>
class PoolCore : public std::enable_shared_from_this<PoolCore<Item, Dist, Invoker>> {
public:
    using Queue = typename Dist::template queue<Item>;

    PoolCore(PoolOptions options, const Dist& dist, Invoker invoker)
        : options_(validate(std::move(options))),
          slots_(std::make_unique<WorkerSlot[]>(options_.workers)),
          queue_(dist, options_.workers),
          invoker_(std::move(invoker)) {}

    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    ~PoolCore() {
        // Only reached after shutdown() joined every worker, or from the
        // last worker of a pool destroyed from inside its own task, which
        // detached itself.
        for (auto& t : threads_) {
            if (t.joinable()) t.detach();
        }
    }

    /// Starts the workers; each holds a reference to the core.
    void start() {
        threads_.reserve(options_.workers);
        auto self = this->shared_from_this();
        try {
            for (std::size_t w = 0; w < options_.workers; ++w) {
                threads_.emplace_back([self, w] { self->worker_main(w); });
            }
        } catch (...) {
            shutdown();
            throw;
        }
    }

    std::size_t size() const noexcept { return options_.workers; }
    const PoolOptions& options() const noexcept { return options_; }
    WorkerSet workers() const noexcept { return WorkerSet(slots_.get(), options_.workers); }

    /// Accepts one task, or throws PoolClosed (or what the distributor threw)
    /// without keeping it.
    void push(Item&& item, const SubmitOptions& opts) {
        // Count first, then check closed: shutdown() closes first, then
        // reads the count, so either it sees this task or we see closed.
        submitted_.add(1);
        if (closed_.load(std::memory_order_seq_cst)) {
            undo_submit();
            throw PoolClosed();
        }
        Placement where;
        try {
            TaskInfo info{opts.priority, opts.key,
                          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(item.submitted_ns))};
            where = queue_.push(std::move(item), info, workers());
        } catch (...) {
            undo_submit();
            throw;
        }
        // Pairs with the fence in sleep(): either the worker's re-check sees
        // the task, or we see it asleep and wake it.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (where.is_any()) {
            wake_any();
        } else {
            wake(where.worker);
        }
    }

    void wait_idle() {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: wait_idle() called from a task of the same pool would wait for itself");
        }
        idle_waiters_.fetch_add(1, std::memory_order_seq_cst);
        for (;;) {
            std::uint32_t epoch = idle_epoch_.load(std::memory_order_acquire);
            if (balanced()) break;
            park(idle_epoch_, epoch);
        }
        idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
    }

    /// Stops accepting, lets the workers finish every queued task, joins them.
    /// Idempotent; safe to call from several threads.
    void shutdown() {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: shutdown() called from a task of the same pool would wait for itself");
        }
        close();
        std::lock_guard lock(join_mutex_);
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
    }

    /// For the front object's destructor: like shutdown(), but if called
    /// from one of our own workers, that worker is detached instead of joined
    /// (it still holds the core alive and exits once the queue drains).
    void shutdown_noexcept() noexcept {
        close();
        std::lock_guard lock(join_mutex_);
        for (auto& t : threads_) {
            if (!t.joinable()) continue;
            if (t.get_id() == std::this_thread::get_id()) {
                t.detach();
            } else {
                t.join();
            }
        }
    }

    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    PoolStats stats() const {
        const std::size_t n = options_.workers;
        PoolStats out;
        out.workers = n;
        out.per_worker.resize(n);
        // Resolved counts first, then started, then submitted: see the class comment.
        for (std::size_t w = 0; w < n; ++w) {
            out.per_worker[w].completed = slots_[w].completed.load(std::memory_order_acquire);
            out.per_worker[w].failed = slots_[w].failed.load(std::memory_order_acquire);
        }
        std::vector<std::uint64_t> started(n);
        for (std::size_t w = 0; w < n; ++w) started[w] = slots_[w].started.load(std::memory_order_acquire);
        out.submitted = submitted_.sum();

        std::uint64_t started_total = 0;
        std::vector<std::uint64_t> wait_b, run_b;
        std::uint64_t wait_c = 0, wait_s = 0, wait_m = 0, run_c = 0, run_s = 0, run_m = 0;
        const std::int64_t now = now_ns();
        for (std::size_t w = 0; w < n; ++w) {
            WorkerStats& ws = out.per_worker[w];
            const WorkerSlot& s = slots_[w];
            ws.index = w;
            ws.running = started[w] - (ws.completed + ws.failed);
            ws.queued = queue_.queued(w);
            ws.busy_time = std::chrono::nanoseconds(static_cast<std::int64_t>(s.busy_ns.load(std::memory_order_relaxed)));
            ws.wait = s.wait_hist.summary();
            ws.run = s.run_hist.summary();
            s.wait_hist.accumulate(wait_b, wait_c, wait_s, wait_m);
            s.run_hist.accumulate(run_b, run_c, run_s, run_m);
            started_total += started[w];
            out.completed += ws.completed;
            out.failed += ws.failed;
            out.throughput += static_cast<double>(s.rate.last_second(now));
        }
        out.running = started_total - (out.completed + out.failed);
        out.queued = out.submitted - started_total;
        out.wait = LatencyHistogram::summarize(wait_b, wait_s, wait_m);
        out.run = LatencyHistogram::summarize(run_b, run_s, run_m);
        return out;
    }

private:
    static PoolOptions validate(PoolOptions o) {
        if (o.workers == 0) throw std::invalid_argument("taskdist: PoolOptions::workers must be at least 1");
        return o;
    }

    // ---- the sleep / wake protocol -------------------------------------
    //
    // A worker that finds nothing to do spins briefly, then:
    //   1. sets its slot's `sleeping` to 1 and bumps `sleepers_`;
    //   2. issues a seq_cst fence, then tries the queue once more;
    //   3. if that finds a task (or the pool may exit), it takes `sleeping`
    //      back to 0 and goes on; otherwise it parks while `sleeping` is 1.
    // A producer pushes, issues a seq_cst fence, then reads `sleeping` (of
    // the worker it targeted, or of any worker when `sleepers_` > 0) and, if
    // it swaps a 1 to 0, wakes that worker. The two fences order the
    // producer's push and the worker's `sleeping` store: either the worker's
    // re-check sees the task, or the producer sees the worker asleep. The
    // swap to 0 makes exactly one party responsible for each wake.

    static constexpr int spin_rounds = 64;

    std::optional<Item> spin_pop(std::size_t w) {
        for (int i = 0; i < spin_rounds; ++i) {
            cpu_relax();
            if (auto item = queue_.try_pop(w)) return item;
        }
        std::this_thread::yield();
        return queue_.try_pop(w);
    }

    std::optional<Item> sleep(std::size_t w) {
        WorkerSlot& s = slots_[w];
        s.sleeping.store(1, std::memory_order_seq_cst);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (auto item = queue_.try_pop(w)) {
            cancel_sleep(s);
            return item;
        }
        if (exit_ready()) {
            cancel_sleep(s);
            return std::nullopt;
        }
        while (s.sleeping.load(std::memory_order_acquire) == 1) park(s.sleeping, 1);
        return std::nullopt;
    }

    void cancel_sleep(WorkerSlot& s) noexcept {
        // If the swap finds 0, a waker already took the duty (and the count).
        if (s.sleeping.exchange(0, std::memory_order_seq_cst) == 1) sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }

    bool wake(std::size_t w) noexcept {
        WorkerSlot& s = slots_[w];
        if (s.sleeping.load(std::memory_order_seq_cst) == 0) return false;
        if (s.sleeping.exchange(0, std::memory_order_seq_cst) == 0) return false;
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        unpark_one(s.sleeping);
        return true;
    }

    void wake_any() noexcept {
        if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
        const std::size_t n = options_.workers;
        std::size_t start = wake_rotor_.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) {
            if (wake((start + i) % n)) return;
        }
    }

    void wake_all() noexcept {
        for (std::size_t w = 0; w < options_.workers; ++w) wake(w);
    }

    // ---- accounting --------------------------------------------------

    std::uint64_t resolved_total() const noexcept {
        std::uint64_t r = 0;
        for (std::size_t w = 0; w < options_.workers; ++w) r += slots_[w].resolved();
        return r;
    }

    /// Every accepted task has resolved. Resolved is read first: it can only
    /// lag submitted, so equality means nothing was outstanding.
    bool balanced() const noexcept {
        std::uint64_t r = resolved_total();
        return r == submitted_.sum();
    }

    bool exit_ready() const noexcept { return closed_.load(std::memory_order_seq_cst) && balanced(); }

    void close() noexcept {
        closed_.store(true, std::memory_order_seq_cst);
        wake_all();
    }

    /// The balance may have been reached by something other than a worker
    /// resolving a task: tell whoever waits for it.
    void balance_changed() noexcept {
        if (idle_waiters_.load(std::memory_order_seq_cst) > 0 && balanced()) {
            idle_epoch_.fetch_add(1, std::memory_order_release);
            unpark_all(idle_epoch_);
        }
        if (closed_.load(std::memory_order_seq_cst)) wake_all();
    }

    void undo_submit() noexcept {
        submitted_.sub(1);
        balance_changed();
    }

    void report_error(std::exception_ptr e) noexcept {
        if (!options_.on_error) {
            print_task_error("a posted task failed", e);
            return;
        }
        try {
            options_.on_error(e);
        } catch (...) {
            print_task_error("PoolOptions::on_error threw", std::current_exception());
        }
    }

    // ---- the worker ------------------------------------------------------

    void worker_main(std::size_t w) {
        set_current_thread_name(options_.name, w);
        current_pool = this;
        for (;;) {
            std::optional<Item> item = queue_.try_pop(w);
            if (!item) item = spin_pop(w);
            if (!item) {
                if (exit_ready()) break;
                item = sleep(w);
                if (!item) continue;
            }
            run(w, *item);
        }
        current_pool = nullptr;
        // Workers asleep waiting for the last tasks can exit now too.
        wake_all();
    }

    void run(std::size_t w, Item& item) {
        WorkerSlot& s = slots_[w];
        const std::int64_t start = now_ns();
        s.wait_hist.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, start - item.submitted_ns)));
        WorkerSlot::bump(s.started, 1, std::memory_order_release);

        TaskContext ctx(w, 1, &s.task_stop);
        std::exception_ptr error;
        try {
            invoker_(item, ctx);
        } catch (...) {
            error = std::current_exception();
        }

        const std::int64_t end = now_ns();
        const auto took = static_cast<std::uint64_t>(std::max<std::int64_t>(0, end - start));
        s.run_hist.record(took);
        WorkerSlot::bump(s.busy_ns, took);
        s.rate.record(end);

        const bool failed = static_cast<bool>(error);
        if (failed) {
            if (item.state) {
                item.state->try_fail(std::move(error));
            } else {
                report_error(std::move(error));  // before counting: wait_idle() covers on_error
            }
        }
        // Counted before the handle is published: whoever sees the handle
        // ready sees the task counted. seq_cst pairs with wait_idle().
        WorkerSlot::bump(failed ? s.failed : s.completed, 1, std::memory_order_seq_cst);
        if (item.state) item.state.publish();
        if (idle_waiters_.load(std::memory_order_seq_cst) > 0 && balanced()) {
            idle_epoch_.fetch_add(1, std::memory_order_release);
            unpark_all(idle_epoch_);
        }
    }

    PoolOptions options_;
    std::unique_ptr<WorkerSlot[]> slots_;
    Queue queue_;
    Invoker invoker_;
    std::vector<std::jthread> threads_;
    std::mutex join_mutex_;

    StripedCounter submitted_;
    alignas(cache_line) std::atomic<bool> closed_{false};
    alignas(cache_line) std::atomic<std::uint32_t> sleepers_{0};
    std::atomic<std::size_t> wake_rotor_{0};
    alignas(cache_line) std::atomic<std::uint32_t> idle_waiters_{0};
    Word idle_epoch_{0};
};

} // namespace taskdist::detail
