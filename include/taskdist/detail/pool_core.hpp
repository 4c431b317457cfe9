// taskdist: the engine shared by WorkerPool and ThreadPool: worker threads,
// the sleep/wake protocol, accounting, statistics, the supervisor (timeouts,
// hung workers, delayed retries) and shutdown.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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
#include "../observer.hpp"
#include "../options.hpp"
#include "../stats.hpp"
#include "../task_context.hpp"
#include "admission.hpp"
#include "park.hpp"
#include "platform.hpp"
#include "striped_counter.hpp"
#include "task_state.hpp"
#include "ticks.hpp"
#include "timer_thread.hpp"
#include "worker_slot.hpp"

namespace taskdist::detail {

/// What the pool queues for one task: the payload, the task's state (empty
/// for a plain post()), and when it was queued, for queue-wait statistics
/// (0: not stamped). The stamp is steady_clock nanoseconds where the pool
/// stamps every task (TaskInfo::submitted_at is read), else the pool's Ticks
/// (PoolCore::submit_stamp()).
template <class Payload, class State>
struct Job {
    Payload payload;
    StateRef<State> state;
    std::int64_t submitted_ns;
};

/// The pool whose worker the current thread is, if any: lets calls that
/// would wait for themselves fail with WouldDeadlock instead of hanging.
inline thread_local const void* current_pool = nullptr;

/// The pool whose PoolObserver::on_submit runs on this thread, if any. The
/// task it reports is counted as accepted but not yet queued, and only this
/// thread can queue it, once the hook returns: a wait for the pool's balance
/// (shutdown(), wait_idle()) from inside the hook would wait for itself.
/// Such a call throws WouldDeadlock rather than not waiting for that one
/// task: shutdown() returning while a task it accepted is still to run would
/// break its promise, and the task still resolves exactly once as usual.
inline thread_local const void* submitting_pool = nullptr;

inline void print_task_error(const char* what, std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "taskdist: %s: %s\n", what, ex.what());
    } catch (...) {
        std::fprintf(stderr, "taskdist: %s: an exception not derived from std::exception\n", what);
    }
}

template <class E>
bool holds(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// How one attempt of a task ended, from the running worker's point of view.
enum class AttemptEnd {
    pending,      ///< not decided yet
    won,          ///< this worker resolves the task with the handler's value
    won_error,    ///< ... with the handler's exception
    won_timeout,  ///< ... with TaskTimeout (the handler returned after its timeout)
    lost,         ///< somebody else resolved it meanwhile (cancel, timeout)
    retry,        ///< the attempt failed and the task goes back to the queue
    quarantined,  ///< the supervisor declared this thread hung; touch nothing
};

/// The engine. The Invoker provides:
///   using Worker = ...;                        per-thread handler state
///   Worker make_worker(std::size_t slot);      may throw: the slot is down
///   void operator()(Worker&, Item&, TaskContext&, bool keep_payload);
///   static constexpr bool payload_survives_call;
/// operator() runs the task; if the item has a state it calls
/// ContextAccess::commit(ctx) once the value exists and stores it only if
/// commit says so. With keep_payload it must leave item.payload intact (a
/// retry will need it). Exceptions propagate to the core.
///
/// Lifetime: owned by a shared_ptr that the front object and every worker
/// thread hold, so a worker (live or quarantined) never outlives the state
/// it touches.
///
/// Accounting: `submitted` counts accepted tasks (striped, seq_cst). Each
/// slot counts the attempts its worker started, the attempts that returned,
/// and the tasks it resolved (completed / failed). Resolutions made off the
/// worker (cancels, timeouts, tasks failed because the pool is broken) are
/// pool-wide counters. A pool is balanced when every accepted task has
/// resolved; wait_idle() and shutdown() wait for that. Resolutions are read
/// before starts, and starts before submissions, so every derived figure is
/// non-negative and the snapshot identity exact.
template <class Item, class Dist, class Invoker>
class PoolCore final : public std::enable_shared_from_this<PoolCore<Item, Dist, Invoker>>, private PoolLink {
public:
    using Queue = typename Dist::template queue<Item>;
    using Worker = typename Invoker::Worker;

    PoolCore(PoolOptions options, const Dist& dist, Invoker invoker)
        : options_(validate(std::move(options))),
          slots_(std::make_unique<WorkerSlot[]>(cap_)),
          queue_(dist, cap_),
          admission_(options_.queue_capacity),
          invoker_(std::move(invoker)),
          live_(cap_) {
        if (options_.measure_timing) {
            const std::int64_t slot = ticks_.from_ns(RateWindow::slot_ns);
            for (std::size_t w = 0; w < cap_; ++w) slots_[w].rate.set_slot_length(slot);
        }
    }

    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    ~PoolCore() {
        stop_supervisor();
        // Normally every thread was joined by shutdown(). Left here: hung
        // threads that outlived quarantine_wait, and the workers of a pool
        // destroyed from inside its own task; they hold this core alive, so
        // reaching here means they are done with it.
        std::lock_guard lock(runners_mutex_);
        for (auto& r : live_) {
            if (r && r->thread.joinable()) r->thread.detach();
        }
        for (auto& r : quarantined_) {
            if (r->thread.joinable()) r->thread.detach();
        }
        for (auto& r : retired_) {
            if (r->thread.joinable()) r->thread.detach();
        }
    }

    /// Starts the workers; each holds a reference to the core.
    void start() {
        try {
            for (std::size_t w = 0; w < options_.workers; ++w) spawn(w);
        } catch (...) {
            shutdown();
            throw;
        }
        if (scales()) schedule_scale_tick();
    }

    /// Workers now (see resize()).
    std::size_t size() const noexcept { return active_.load(std::memory_order_acquire); }
    const PoolOptions& options() const noexcept { return options_; }

    /// `n` workers from now (see the scaling section).
    void resize(std::size_t n) {
        if (n == 0 || n > cap_) {
            throw std::invalid_argument("taskdist: resize() needs 1 <= n <= PoolOptions::max_workers");
        }
        if (closed()) throw PoolClosed();
        std::lock_guard scale(scale_mutex_);
        set_active(n);
    }

    WorkerSet workers() const noexcept { return WorkerSet(slots_.get(), active_.load(std::memory_order_acquire)); }

    // ---- submission -----------------------------------------------------------

    /// Whether a task with these options needs a state even without a
    /// handle (a post() with a timeout, deadline, stop token or retries).
    bool needs_state(const SubmitOptions& o) const noexcept {
        return o.timeout.count() > 0 || options_.default_timeout.count() > 0 || o.deadline ||
               o.stop_token.stop_possible() || attempts_for(o) > 1 || drops_oldest() || observer_;
    }

    std::uint32_t attempts_for(const SubmitOptions& o) const noexcept {
        return o.max_attempts ? o.max_attempts : options_.max_attempts;
    }

    /// Validates per-task options; throws std::invalid_argument.
    static void check(const SubmitOptions& o) {
        if (o.timeout.count() < 0) throw std::invalid_argument("taskdist: SubmitOptions::timeout must not be negative");
    }

    /// True on one of this pool's worker threads.
    bool on_own_worker() const noexcept { return current_pool == this; }

    bool drops_oldest() const noexcept { return admission_.bounded() && options_.overflow == Overflow::drop_oldest; }

    /// What push() did with a task.
    enum class Pushed { queued, ran_on_caller, refused };

    /// Accepts one task, or throws PoolClosed (or what the distributor threw)
    /// without keeping it. The item's state, if any, is filled in here. A
    /// full bounded queue applies PoolOptions::overflow; where that refuses
    /// the task, push() throws QueueFull, or returns `refused` when
    /// `throw_if_full` is false (the item is then left untouched).
    Pushed push(Item&& item, const SubmitOptions& opts, bool throw_if_full = true) {
        if (stamps_every_task_ || sampled_now()) item.submitted_ns = submit_stamp();
        TaskStateBase* st = item.state.get();
        // A stamp in ticks is no time point: submitted_at is then the epoch,
        // as for the tasks not stamped (no one reads it).
        TaskInfo info{opts.priority, opts.key, to_time_point(stamps_every_task_ ? item.submitted_ns : 0)};
        if (st) {
            st->pool_ = this;
            st->set_info(info);
            const auto timeout = opts.timeout.count() > 0 ? opts.timeout : options_.default_timeout;
            st->timeout_ns_ = timeout.count();
            st->deadline_ns_ = opts.deadline ? std::max<std::int64_t>(1, to_ns(*opts.deadline)) : 0;
            st->max_attempts_ = attempts_for(opts);
        }
        // A post() with a state has no handle: hold it while we still use it.
        StateHold hold(st && st->is_detached() ? st : nullptr);

        if (admission_.bounded()) {
            if (closed_.load(std::memory_order_seq_cst)) throw PoolClosed();
            switch (admit(throw_if_full)) {
                case Admit::taken:
                    break;
                case Admit::refused:
                    return Pushed::refused;
                case Admit::run_here:
                    run_on_caller(std::move(item), info);
                    return Pushed::ran_on_caller;
            }
        }

        // Count first, then check closed: shutdown() closes first, then
        // reads the count, so either it sees this task or we see closed.
        submitted_.add(1);
        if (closed_.load(std::memory_order_seq_cst)) {
            undo_submit();
            left_queue();
            throw PoolClosed();
        }
        if (observer_) [[unlikely]] observe_submit(info);
        Placement where;
        try {
            where = queue_.push(std::move(item), info, workers());
        } catch (...) {
            undo_submit();
            left_queue();
            throw;
        }
        // Recorded once queued, so that a push that failed leaves no record
        // behind; until then a worker may start it, which the record skips.
        if (drops_oldest()) admission_.track(st);
        wake_for(where);
        adopt_if_orphaned(where);
        if (st) {
            if (st->deadline_ns_) {
                Event ev;
                ev.at = st->deadline_ns_;
                ev.kind = EventKind::queue_deadline;
                ev.state = StateHold(st);
                schedule(std::move(ev));
            }
            if (opts.stop_token.stop_possible()) st->link_stop_token(opts.stop_token);
        }
        return Pushed::queued;
    }

    // ---- waiting and shutdown ----------------------------------------------

    using Payload = decltype(std::declval<Item&>().payload);

    void wait_idle() { (void)wait_idle_until(std::chrono::steady_clock::time_point::max()); }

    /// True once every accepted task has resolved; false if `deadline` came first.
    bool wait_idle_until(std::chrono::steady_clock::time_point deadline) {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: wait_idle() called from a task of the same pool would wait for itself");
        }
        refuse_in_on_submit("wait_idle()");
        idle_waiters_.fetch_add(1, std::memory_order_seq_cst);
        bool idle = true;
        for (;;) {
            std::uint32_t epoch = idle_epoch_.load(std::memory_order_acquire);
            if (balanced()) break;
            if (deadline == std::chrono::steady_clock::time_point::max()) {
                park(idle_epoch_, epoch);
            } else if (!park_until(idle_epoch_, epoch, deadline)) {
                idle = balanced();
                break;
            }
        }
        idle_waiters_.fetch_sub(1, std::memory_order_relaxed);
        return idle;
    }

    /// Stops accepting, lets the workers finish every queued task, joins
    /// them, then gives hung threads at most quarantine_wait to return.
    /// Idempotent; safe to call from several threads.
    void shutdown() {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: shutdown() called from a task of the same pool would wait for itself");
        }
        refuse_in_on_submit("shutdown()");
        shutdown_noexcept();
    }

    /// For the front object's destructor: like shutdown(), but from one of
    /// our own tasks it only closes the pool; the workers drain the queue
    /// and exit by themselves, holding the core alive until they do.
    void shutdown_noexcept() noexcept {
        close();
        // From on_submit too: the task being submitted still gets queued,
        // and the workers stay until it has run.
        if (current_pool == this || submitting_pool == this) return;
        join_workers();
        stop_supervisor();
        wait_quarantined();
    }

    bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    /// shutdown() with a limit on draining: stops accepting, lets the workers
    /// drain until `deadline`, then does what shutdown_now() does with what
    /// is left. Returns how many queued tasks that cancelled.
    std::size_t shutdown_until(std::chrono::steady_clock::time_point deadline, std::vector<Payload>* never_started) {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: shutdown() called from a task of the same pool would wait for itself");
        }
        refuse_in_on_submit("shutdown_until()");
        close();
        if (wait_idle_until(deadline)) {
            shutdown_noexcept();
            return 0;
        }
        return shutdown_now(never_started);
    }

    // ---- pausing dispatch ------------------------------------------------------
    //
    // A paused pool accepts tasks but starts none: a worker checks the flag
    // before it pops and again before it starts what it popped, and parks on
    // the flag's word until resume(). Closing the pool ends a pause for good,
    // so shutdown() can drain and shutdown_now() can cancel.

    void pause() noexcept {
        if (!closed()) paused_.store(1, std::memory_order_seq_cst);
    }

    void resume() noexcept {
        paused_.store(0, std::memory_order_seq_cst);
        unpark_all(paused_);
    }

    bool paused() const noexcept { return paused_.load(std::memory_order_acquire) != 0 && !closed(); }

    /// Stops accepting; every task still queued resolves TaskCancelled
    /// without starting (its payload is appended to `never_started` when
    /// given); running tasks have their stop requested (and are treated as
    /// hung after hang_grace). Waits for the workers like shutdown(). Returns
    /// how many queued tasks were cancelled. Only the first call cancels and
    /// reports; a later or concurrent one waits like shutdown() and returns 0.
    std::size_t shutdown_now(std::vector<Payload>* never_started) {
        if (current_pool == this) {
            throw WouldDeadlock("taskdist: shutdown_now() called from a task of the same pool would wait for itself");
        }
        refuse_in_on_submit("shutdown_now()");
        bool first = false;
        {
            std::lock_guard lock(drained_mutex_);
            first = !draining_.load(std::memory_order_relaxed);
            if (first) drain_sink_ = never_started;
            // Set under the mutex so that discard() never sees draining
            // without the sink it must fill.
            draining_.store(true, std::memory_order_seq_cst);
        }
        if (!first) {
            shutdown_noexcept();
            return 0;
        }
        close();
        // A retry waiting out its back-off counts as queued: queued now, it
        // is cancelled like the rest, where the workers would otherwise wait
        // for its timer (the back-off doubles: hours, at the limit).
        fire_retries_now();
        std::vector<std::shared_ptr<Runner>> running;
        {
            std::lock_guard lock(runners_mutex_);
            for (auto& r : live_) {
                if (r) running.push_back(r);
            }
        }
        for (auto& r : running) {
            std::lock_guard lock(r->stop_mutex);
            if ((r->phase.load(std::memory_order_acquire) & 3) == phase_running) {
                r->stop.request_stop();
                schedule_hang_check(*r);
            }
        }
        join_workers();
        stop_supervisor();
        wait_quarantined();
        std::lock_guard lock(drained_mutex_);
        drain_sink_ = nullptr;
        return std::exchange(drained_count_, 0);
    }

    // ---- statistics ------------------------------------------------------

    PoolStats stats() const {
        // Every slot that ever had a worker: a slot scaled away keeps its figures.
        const std::size_t n = high_water_.load(std::memory_order_acquire);
        PoolStats out;
        out.workers = active_.load(std::memory_order_acquire);
        out.per_worker.resize(n);
        // Resolutions first, then starts, then submissions: see the class comment.
        std::uint64_t by_workers = 0;
        std::vector<std::uint64_t> ended(n);
        for (std::size_t w = 0; w < n; ++w) {
            WorkerStats& ws = out.per_worker[w];
            ws.completed = slots_[w].completed.load(std::memory_order_acquire);
            ws.failed = slots_[w].failed.load(std::memory_order_acquire);
            ended[w] = ws.completed + ws.failed + slots_[w].ended_other.load(std::memory_order_acquire);
            by_workers += ws.completed + ws.failed;
            out.completed += ws.completed;
            out.failed += ws.failed;
        }
        out.timed_out = timed_out_.load(std::memory_order_acquire);
        out.cancelled = cancelled_.load(std::memory_order_acquire);
        const std::uint64_t other_failed = failed_other_.load(std::memory_order_acquire);
        out.failed += other_failed;
        out.retried = retried_.load(std::memory_order_acquire);
        out.rejected = rejected_.load(std::memory_order_acquire);
        const std::uint64_t other_completed = completed_other_.load(std::memory_order_acquire);
        out.completed += other_completed;
        out.refused = refused_.load(std::memory_order_relaxed);
        out.ran_on_caller = ran_on_caller_.load(std::memory_order_relaxed);
        out.blocked = admission_.waiting();
        out.ran_inline = ran_inline_.load(std::memory_order_relaxed);
        out.paused = paused();
        std::uint64_t running = 0;
        for (std::size_t w = 0; w < n; ++w) {
            const WorkerSlot& s = slots_[w];
            std::uint64_t started = s.started.load(std::memory_order_acquire);
            // If this thread was preempted since it read `ended`, the worker
            // may have started and ended many tasks meanwhile, and started -
            // ended would count them all as running. A re-read of `ended`
            // that did not move proves the pair is recent enough; the few
            // retries are bounded because the identity below clamps anyway.
            for (int tries = 0; tries < 4; ++tries) {
                const std::uint64_t again = s.completed.load(std::memory_order_acquire) +
                                            s.failed.load(std::memory_order_acquire) +
                                            s.ended_other.load(std::memory_order_acquire);
                if (again == ended[w]) break;
                ended[w] = again;  // only for this worker's running figure; the totals stay as read
                started = s.started.load(std::memory_order_acquire);
            }
            out.per_worker[w].running = started > ended[w] ? started - ended[w] : 0;
            running += out.per_worker[w].running;
        }
        out.submitted = submitted_.sum();

        const std::uint64_t resolved =
            by_workers + other_failed + other_completed + out.timed_out + out.cancelled + out.rejected;
        const std::uint64_t unresolved = out.submitted > resolved ? out.submitted - resolved : 0;
        // A retried task's next attempt may start between our reads of its
        // retry and of the start; the clamp keeps the identity exact.
        out.running = std::min(running, unresolved);
        out.queued = unresolved - out.running;

        std::vector<std::uint64_t> wait_b, run_b;
        std::uint64_t wait_c = 0, wait_s = 0, wait_m = 0, run_c = 0, run_s = 0, run_m = 0;
        const std::int64_t now = ticks_.now();  // the rate windows count in ticks
        for (std::size_t w = 0; w < n; ++w) {
            WorkerStats& ws = out.per_worker[w];
            const WorkerSlot& s = slots_[w];
            ws.index = w;
            ws.queued = queue_.queued(w);
            ws.busy_time = std::chrono::nanoseconds(static_cast<std::int64_t>(s.busy_ns.load(std::memory_order_relaxed)));
            ws.wait = s.wait_hist.summary();
            ws.run = s.run_hist.summary();
            ws.replaced_hung = s.replaced_hung.load(std::memory_order_relaxed);
            ws.replaced_fault = s.replaced_fault.load(std::memory_order_relaxed);
            ws.factory_failures = s.factory_failures.load(std::memory_order_relaxed);
            ws.available = s.down.load(std::memory_order_relaxed) == 0;
            ws.active = w < out.workers;
            s.wait_hist.accumulate(wait_b, wait_c, wait_s, wait_m);
            s.run_hist.accumulate(run_b, run_c, run_s, run_m);
            out.throughput += static_cast<double>(s.rate.last_second(now));
        }
        out.wait = LatencyHistogram::summarize(wait_b, wait_s, wait_m);
        out.run = LatencyHistogram::summarize(run_b, run_s, run_m);
        return out;
    }

private:
    // ---- one worker thread ---------------------------------------------------
    //
    // A Runner is one thread serving a slot. When the thread hangs, the
    // supervisor quarantines its Runner and gives the slot a new one; the old
    // thread keeps its Runner (and its handler state) until it returns.

    struct Runner {
        explicit Runner(std::size_t s) : slot(s) {}
        const std::size_t slot;
        /// Stop source of the attempt running now; TaskContext points at it.
        /// Replaced by the thread between tasks once a stop was requested.
        std::stop_source stop;
        /// Guards replacing `stop` against shutdown_now() requesting it; the
        /// hot path takes it only after a stop was requested.
        std::mutex stop_mutex;
        /// (attempt sequence << 2) | phase: idle 0, running 1, quarantined 2.
        /// The worker (at the end of an attempt) and the supervisor (at a hang
        /// check) race to move it out of `running`; one CAS decides.
        std::atomic<std::uint64_t> phase{0};
        std::uint64_t seq = 0;  // the thread's own copy of the sequence
        // The thread's own sampling state (see run()).
        std::uint32_t wait_tick = 0;   // which stamped tasks' waits it measures
        std::uint32_t run_tick = 0;    // which short attempts it times
        bool time_next = false;        // the last timed attempt was long: time the next
        std::uint64_t untimed = 0;     // attempts since the last timed one, for the throughput
        bool balance_due = false;      // it resolved tasks since it last told the balance's waiters
        /// Set by the supervisor when the running attempt's timeout passed and
        /// it will be retried: the worker then ends it as a timeout.
        std::atomic<bool> timeout_fired{false};
        /// A task run inline by this thread threw WorkerFault.
        bool inline_fault = false;
        /// The slot was scaled away and this thread left it (under runners_mutex_).
        bool retired = false;
        /// The attempt's item: owned by the thread while it runs, by the
        /// supervisor once the thread is quarantined.
        std::optional<Item> current;
        /// 0 live, 1 exited, 2 quarantined, 3 quarantined and exited.
        Word life{0};
        /// Touched only under the core's runners_mutex_.
        std::jthread thread;
    };

    static constexpr std::uint64_t phase_idle = 0, phase_running = 1, phase_quarantined = 2;

    // This thread's Runner and handler while it serves this pool, for
    // run_inline(): a task waiting on another runs it on its own worker.
    static inline thread_local Runner* tl_runner_ = nullptr;
    static inline thread_local Worker* tl_handler_ = nullptr;

    void spawn(std::size_t w) {
        std::lock_guard lock(runners_mutex_);
        spawn_locked(w);
    }

    void spawn_locked(std::size_t w) {
        auto r = std::make_shared<Runner>(w);
        auto self = this->shared_from_this();
        r->thread = std::jthread([self, r]() mutable {
            // Drop the Runner before the core, so the core (which may be
            // destroyed on this thread) is the one that destroys Runners.
            auto core = std::move(self);
            auto runner = std::move(r);
            core->worker_main(*runner);
            runner.reset();
        });
        live_[w] = std::move(r);
    }

    void worker_main(Runner& r) {
        const std::size_t w = r.slot;
        set_current_thread_name(options_.name, w);
        current_pool = this;
        // A plain object and a flag rather than std::optional: GCC 12 reports
        // a false -Wmaybe-uninitialized through optional<unique_ptr>.
        Worker handler{};
        bool built = false;
        bool quarantined = false;
        current_worker_link = this;
        tl_runner_ = &r;
        // tl_handler_ stays null until the handler is built: a factory or
        // on_worker_start hook that waits for a task of this pool must wait
        // like any thread, not run it through a handler that does not exist.
        tl_handler_ = nullptr;
        // When the last task ended, while this worker goes straight on to the
        // next one (0 otherwise): that moment is the next task's start too,
        // which saves a clock read per task.
        std::int64_t stamp = 0;
        if (observer_) [[unlikely]] {
            observe([&](PoolObserver& o) { o.on_worker_start(WorkerView(&slots_[w], w)); });
        }
        for (;;) {
            if (w >= active_.load(std::memory_order_acquire)) [[unlikely]] {
                settle_balance(r);
                if (retire(r)) break;
            }
            if (!built) {
                settle_balance(r);
                if (!(built = build_or_wait(r, handler))) {
                    if (w >= active_.load(std::memory_order_acquire)) continue;  // scaled away while down
                    break;  // the pool may exit
                }
                tl_handler_ = &handler;
            }
            if (paused()) {
                settle_balance(r);
                wait_unpaused(w);
            }
            std::optional<Item> item = queue_.try_pop(w);
            if (!item) {
                stamp = 0;
                settle(r);
                item = spin_pop(w);
            }
            if (!item) {
                if (exit_ready()) break;
                item = sleep(w);
                if (!item) continue;
            }
            offer_surplus(w);
            // Paused since the check above: hold the task (still counted as
            // queued; its deadline and cancel still apply) until resume().
            if (paused()) {
                stamp = 0;
                settle(r);
                wait_unpaused(w);
            }
            if (draining_.load(std::memory_order_acquire)) {
                discard(std::move(*item));
                continue;
            }
            const RunResult res = run(r, handler, std::move(*item), stamp);
            if (res.quarantined) {
                quarantined = true;
                break;
            }
            if (res.fault) {
                // The handler threw WorkerFault: this worker's state is
                // unusable (run() already marked the slot down).
                tl_handler_ = nullptr;
                handler = Worker{};
                built = false;
                hand_back(w);
            }
        }
        if (!quarantined) settle_rate(r);  // a quarantined thread's slot has a new writer
        settle_balance(r);
        current_pool = nullptr;
        current_worker_link = nullptr;
        tl_runner_ = nullptr;
        tl_handler_ = nullptr;
        handler = Worker{};
        if (quarantined) {
            // check_hung() won the phase and owns r.current until it says it
            // is done (life 2); it may still be running user code (retry_if)
            // with the item in hand, and its life store must not overwrite ours.
            for (std::uint32_t l = r.life.load(std::memory_order_acquire); l == 0;
                 l = r.life.load(std::memory_order_acquire)) {
                park(r.life, 0);
            }
        }
        r.current.reset();
        if (quarantined) {
            // The slot has a new thread; this one only says it is gone.
            r.life.store(3, std::memory_order_release);
            unpark_all(r.life);
            return;
        }
        if (observer_) [[unlikely]] {
            observe([&](PoolObserver& o) { o.on_worker_stop(WorkerView(&slots_[w], w)); });
        }
        // Workers asleep waiting for the last tasks can exit now too.
        wake_all();
        r.life.store(1, std::memory_order_release);
        unpark_all(r.life);
    }

    // ---- building a worker's state, and being down ------------------------

    /// Builds the per-worker handler, retrying with back-off while the
    /// factory throws. While down, tasks that reach this worker go to healthy
    /// workers, or fail with PoolBroken once every worker keeps failing.
    /// Returns false when the pool may exit.
    bool build_or_wait(Runner& r, Worker& handler) {
        const std::size_t w = r.slot;
        WorkerSlot& s = slots_[w];
        for (;;) {
            // After a WorkerFault, wait before rebuilding; a first build does not.
            const std::uint32_t failures = s.failures_in_row.load(std::memory_order_relaxed);
            if (failures > 0) {
                s.down.store(1, std::memory_order_seq_cst);
                if (!down_wait(w, failures)) return false;
            }
            try {
                handler = invoker_.make_worker(w);
                if (s.down.load(std::memory_order_relaxed)) {
                    s.down.store(0, std::memory_order_seq_cst);
                }
                return true;
            } catch (...) {
                s.factory_failures.fetch_add(1, std::memory_order_relaxed);
                s.failures_in_row.fetch_add(1, std::memory_order_relaxed);
                s.down.store(1, std::memory_order_seq_cst);
                print_task_error("a worker's factory threw; the worker stays down and retries",
                                 std::current_exception());
                notify_replace(w, ReplaceReason::factory_failed, s.replacements());
            }
        }
    }

    /// The back-off before rebuild attempt number `failures` (1-based).
    std::chrono::nanoseconds restart_delay(std::uint32_t failures) const noexcept {
        auto d = options_.restart_backoff;
        // Doubling past the cap would overflow where the cap is huge.
        for (std::uint32_t i = 1; i < failures && d < options_.restart_backoff_max; ++i) {
            d = d > options_.restart_backoff_max / 2 ? options_.restart_backoff_max : d * 2;
        }
        return std::min(d, options_.restart_backoff_max);
    }

    /// Waits out the back-off while down, re-dispatching what reaches this
    /// worker. False if the pool may exit.
    bool down_wait(std::size_t w, std::uint32_t failures) {
        const std::int64_t until = add_saturated(steady_ns(), restart_delay(failures).count());
        for (;;) {
            const bool kept = drain_down(w);
            if (exit_ready() || w >= active_.load(std::memory_order_acquire)) return false;
            if (steady_ns() >= until) return true;
            down_sleep(w, until, kept);
        }
    }

    bool pool_broken() const noexcept {
        const std::size_t n = active_.load(std::memory_order_acquire);
        for (std::size_t i = 0; i < n; ++i) {
            if (slots_[i].down.load(std::memory_order_acquire) == 0) return false;
            if (slots_[i].failures_in_row.load(std::memory_order_relaxed) < options_.broken_after) return false;
        }
        return true;
    }

    /// Moves what waits in a down worker's queue to workers that can run it.
    /// True if tasks stay here (nobody else can take them now): the caller
    /// then sleeps out its back-off instead of spinning on them.
    bool drain_down(std::size_t w) {
        if (draining_.load(std::memory_order_acquire)) {
            while (std::optional<Item> item = queue_.try_pop(w)) discard(std::move(*item));
            return false;
        }
        const bool broken = pool_broken();
        if (!broken) {
            // Keep tasks where they are until somebody can run them; leave a
            // shared queue (queued() == 0) to the healthy workers.
            if (workers().available_count() == 0) return queue_.queued(w) > 0;
            // At most what is here now, and not a task the distributor puts
            // straight back here (it may know no other worker, e.g. after a
            // resize): chasing those would spin forever, and a shutdown_now()
            // that began meanwhile would wait for this loop.
            for (std::size_t n = queue_.queued(w); n > 0 && !draining_.load(std::memory_order_acquire); --n) {
                std::optional<Item> item = queue_.try_pop(w);
                if (!item) break;
                const Placement to = repush(std::move(*item));
                if (!to.is_any() && to.worker == w) return true;
            }
            return false;
        }
        while (std::optional<Item> item = queue_.try_pop(w)) {
            fail_unstarted(std::move(*item), std::make_exception_ptr(PoolBroken{}));
        }
        return false;
    }

    /// `kept`: tasks wait here that only this worker can take; sleep anyway
    /// (a new push, a resize or a shutdown wakes it).
    void down_sleep(std::size_t w, std::int64_t until, bool kept) {
        WorkerSlot& s = slots_[w];
        s.sleeping.store(1, std::memory_order_seq_cst);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        heavy_fence();  // pairs with the producer's light_fence() in wake_for()
        if ((kept || queue_.queued(w) == 0) && !exit_ready() && w < active_.load(std::memory_order_seq_cst)) {
            park_until(s.sleeping, 1, to_time_point(until));
        }
        cancel_sleep(s);
    }

    // ---- one attempt -------------------------------------------------------

    struct AttemptCtx {
        PoolCore* core;
        Runner* runner;
        TaskStateBase* state;
        std::int64_t limit = 0;  ///< when this attempt's run time or deadline runs out (0: never)
        AttemptEnd end = AttemptEnd::pending;
    };

    static bool commit_thunk(void* p) noexcept {
        auto* a = static_cast<AttemptCtx*>(p);
        if (a->end == AttemptEnd::pending) a->end = a->core->end_attempt(*a->runner, *a->state, nullptr, a->limit);
        return a->end == AttemptEnd::won;
    }

    struct RunResult {
        bool quarantined = false;
        bool fault = false;  ///< the handler threw WorkerFault
    };

    /// Out of work: the attempts not timed since the last reading enter the
    /// throughput now, not with the next task, which may come much later.
    void settle_rate(Runner& r) noexcept {
        if (r.untimed != 0) slots_[r.slot].rate.record(ticks_.now(), std::exchange(r.untimed, 0));
    }

    /// True once in wait_sampling calls with the same counter (one of the
    /// worker thread's own): a countdown, no division on the hot path.
    bool sampling_turn(std::uint32_t& tick) const noexcept {
        if (++tick < options_.wait_sampling) return false;
        tick = 0;
        return true;
    }

    /// Out of work, or about to stop taking tasks for a while.
    void settle(Runner& r) noexcept {
        settle_rate(r);
        settle_balance(r);
    }

    /// A `stamp` for run(): the worker went straight on from an attempt it
    /// did not time.
    static constexpr std::int64_t busy_untimed = -1;

    /// `stamp`: on entry, when this worker's previous attempt ended if it
    /// read the clock then, 0 if it was idle since, busy_untimed if it went
    /// straight on without reading; on return, the same for this attempt.
    RunResult run(Runner& r, Worker& handler, Item&& popped, std::int64_t& stamp) {
        const std::size_t w = r.slot;
        const std::int64_t taken = std::exchange(stamp, 0);
        WorkerSlot& s = slots_[w];
        TaskStateBase* st = popped.state.get();
        unsigned attempt = 1;
        bool keep_payload = false;
        if (st) {
            // Lock-free checks first: these fields were written before the
            // task was queued, and only the popping worker touches them now.
            if (st->deadline_ns_ && steady_ns() >= st->deadline_ns_) {
                const std::uint32_t old = st->transition_unless_claimed(TaskStateBase::claimed, 0);
                if (old & TaskStateBase::claimed) {
                    popped.state.release();  // resolved meanwhile (a tombstone: its place is back)
                } else {
                    left_queue();
                    resolve_claimed(std::move(popped.state), std::make_exception_ptr(TaskTimeout{}), timed_out_);
                }
                return {};
            }
            if (st->previous_worker() == w && !st->bounced_ && other_available(w)) {
                // A retry reached the worker it failed on while another is
                // healthy: send it round once more.
                st->bounced_ = true;
                repush(std::move(popped));
                return {};
            }
            // site_ is read only by whoever sees `started`, which the CAS
            // below publishes (release) after this store.
            st->site_ = &r;
            const std::uint32_t old = st->transition_unless_claimed(TaskStateBase::started, 0);
            if (old & TaskStateBase::claimed) {
                // Resolved while queued (cancelled, timed out): never started.
                popped.state.release();
                return {};
            }
            attempt = st->attempt();
            keep_payload = attempt < st->max_attempts_;
        }

        // Run time is measured in Ticks (cheap); what is compared with
        // steady_clock (a limit, a sampled queue wait) reads that clock.
        // Which attempts are timed: the first after an idle spell, every one
        // after an attempt of a microsecond or more (a clock read is then
        // under 1% of it), and of shorter ones one in wait_sampling, which
        // counts for wait_sampling (an unbiased estimate of count, sum and
        // percentiles, where timing each would double a tiny task's cost).
        const bool timed = options_.measure_timing;
        const bool limited = st && (st->timeout_ns_ || st->deadline_ns_);
        std::uint32_t weight = 0;  // 0: not timed
        if (timed) {
            if (taken == 0 || r.time_next) {
                weight = 1;
            } else if (sampling_turn(r.run_tick)) {
                weight = options_.wait_sampling;
            }
        }
        const std::int64_t start = weight == 0 ? 0 : taken > 0 ? taken : ticks_.now();
        // Where every task is stamped (for the distributor or an observer),
        // the worker measures the wait of one in wait_sampling, as producers
        // otherwise stamp: a clock read per task would cost what timing saves.
        const bool sample_wait = timed && popped.submitted_ns && (!stamps_every_task_ || sampling_turn(r.wait_tick));
        const std::int64_t start_ns = (limited || (sample_wait && stamps_every_task_)) ? steady_ns() : 0;
        if (sample_wait) s.wait_hist.record(waited_since(popped.submitted_ns, start_ns));
        WorkerSlot::bump(s.started, 1, std::memory_order_release);
        left_queue();  // after `started`: a snapshot never sees its place taken twice
        if (observer_ && st) [[unlikely]] {
            observe([&](PoolObserver& o) { o.on_start(WorkerView(&s, w), st->info()); });
        }
        if (r.stop.stop_requested()) {
            std::lock_guard lock(r.stop_mutex);  // shutdown_now() may be requesting a stop on it
            r.stop = std::stop_source();
        }
        // The common case moves the entry once; only a boxed one is rebuilt.
        if (st && st->box_) {
            r.current.emplace(unboxed(std::move(popped)));
        } else {
            r.current.emplace(std::move(popped));
        }
        Item& item = *r.current;

        AttemptCtx actx{this, &r, st};
        TaskContext ctx(w, attempt, &r.stop);
        if (st) {
            ++r.seq;
            // A flag the last attempt left set (it was cancelled after its
            // timeout fired) must not end this one as a timeout. No stale
            // store can follow: the supervisor sets it only under the task's
            // lock while the phase names that attempt, and end_attempt()
            // waited that lock out.
            r.timeout_fired.store(false, std::memory_order_relaxed);
            r.phase.store((r.seq << 2) | phase_running, std::memory_order_release);
            ContextAccess::set_commit(ctx, &commit_thunk, &actx);
            std::int64_t limit = st->timeout_ns_ ? add_saturated(start_ns, st->timeout_ns_) : 0;
            if (st->deadline_ns_ && (limit == 0 || st->deadline_ns_ < limit)) limit = st->deadline_ns_;
            actx.limit = limit;
            if (limit) {
                Event ev;
                ev.at = limit;
                ev.kind = EventKind::run_timeout;
                ev.state = StateHold(st);
                ev.runner = live_runner(w);
                ev.seq = r.seq;
                schedule(std::move(ev));
            }
        }

        std::exception_ptr error;
        try {
            invoker_(handler, item, ctx, keep_payload);
        } catch (...) {
            error = std::current_exception();
        }
        const bool fault = (error && holds<WorkerFault>(error)) || std::exchange(r.inline_fault, false);
        if (st && actx.end == AttemptEnd::pending) actx.end = end_attempt(r, *st, error, actx.limit);
        else if (st && error && actx.end == AttemptEnd::won) {
            // The value was committed but storing it threw.
            actx.end = AttemptEnd::won_error;
            st->store_error(error);
        }
        if (actx.end == AttemptEnd::quarantined) return {true, false};
        if (fault) {
            // Before the task is retried or resolved: the retry must see this
            // worker down, and whoever sees the outcome sees the replacement.
            s.down.store(1, std::memory_order_seq_cst);
            s.replaced_fault.fetch_add(1, std::memory_order_relaxed);
            s.failures_in_row.fetch_add(1, std::memory_order_relaxed);
            notify_replace(w, ReplaceReason::worker_fault, s.replacements());
        }

        if (weight != 0) {
            const std::int64_t end = ticks_.now();
            const std::uint64_t took = ticks_.to_ns(end - start);
            s.run_hist.record(took, weight);
            WorkerSlot::bump(s.busy_ns, took * weight);
            r.time_next = took >= 1000;
            s.rate.record(end, std::exchange(r.untimed, 0) + 1);
            // What follows is short unless it calls user code (on_error, an
            // observer): only then would the next task's start be early.
            stamp = (!error && !observer_) ? end : busy_untimed;
        } else if (timed) {
            // Counted for the throughput with the next timed attempt, at
            // most wait_sampling attempts on, or when the worker runs out of
            // work (settle_rate()).
            ++r.untimed;
            stamp = busy_untimed;
        }
        // Counted before the outcome is published: whoever sees the handle
        // ready sees the task counted. settle_balance() pairs these counts
        // with wait_idle().
        WorkerSlot::bump(s.returned, 1, std::memory_order_release);
        if constexpr (requires(Queue& q) { q.done(w); }) queue_.done(w);

        if (observer_ && st) [[unlikely]] observe_finish(w, *st, actx.end);

        if (!st) {
            if (error) report_error(error);  // before counting: wait_idle() covers on_error
            WorkerSlot::bump(error ? s.failed : s.completed, 1, std::memory_order_release);
        } else {
            switch (actx.end) {
                case AttemptEnd::won:
                    WorkerSlot::bump(s.completed, 1, std::memory_order_release);
                    item.state.publish();
                    break;
                case AttemptEnd::won_error:
                    if (st->is_detached()) report_error(st->error_ptr());
                    WorkerSlot::bump(s.failed, 1, std::memory_order_seq_cst);
                    item.state.publish();
                    break;
                case AttemptEnd::won_timeout:
                    if (st->is_detached()) report_error(st->error_ptr());
                    s.ended_other.fetch_add(1, std::memory_order_seq_cst);
                    timed_out_.fetch_add(1, std::memory_order_seq_cst);
                    item.state.publish();
                    break;
                case AttemptEnd::lost:
                    item.state.release();
                    break;
                case AttemptEnd::retry:
                    s.ended_other.fetch_add(1, std::memory_order_seq_cst);
                    retried_.fetch_add(1, std::memory_order_seq_cst);
                    schedule_retry(std::move(item), attempt);
                    break;
                default:
                    break;
            }
        }
        // A task that ran without breaking the worker proves it healthy.
        if (!fault && s.failures_in_row.load(std::memory_order_relaxed) != 0) {
            s.failures_in_row.store(0, std::memory_order_relaxed);
        }
        r.current.reset();
        // Whoever waits for the balance (wait_idle(), workers waiting to
        // exit) hears of it when this worker runs out of work or stops
        // taking tasks (settle_balance()), not after every task: the check
        // reads every slot's counters and needs a full fence, which showed
        // per task. The last task of a balance is always followed by its
        // worker finding nothing, or leaving.
        r.balance_due = true;
        return {false, fault};
    }

    /// See the end of run(). The fence pairs the counters this worker
    /// stored (release, no fence) with another worker's doing the same, so
    /// that of two workers finishing the last two tasks at once, at least
    /// one sees both counted.
    void settle_balance(Runner& r) noexcept {
        if (!r.balance_due) return;
        r.balance_due = false;
        full_fence();
        notify_balance();
    }

    /// The handler returned (error: what it threw, if anything). Decides,
    /// under the task's lock, who resolves it and how. `limit`: when the
    /// attempt's time ran out (0: no limit). An attempt that returns after
    /// it timed out, before the supervisor noticed (a loaded machine can
    /// delay it by a scheduling quantum or more), is a timeout too: its
    /// outcome must not depend on how quickly the supervisor ran.
    AttemptEnd end_attempt(Runner& r, TaskStateBase& st, std::exception_ptr error, std::int64_t limit) noexcept {
        std::uint64_t expect = (r.seq << 2) | phase_running;
        if (!r.phase.compare_exchange_strong(expect, (r.seq << 2) | phase_idle, std::memory_order_acq_rel)) {
            return AttemptEnd::quarantined;
        }
        // One CAS decides, unless a canceller or the supervisor holds the
        // task's lock: then wait for it and look again. The supervisor sets
        // timeout_fired only under that lock while our phase said running,
        // so a value read with the lock free is final. The lock is waited
        // out even once the task is claimed: its holder sets `claimed` before
        // it requests a stop on this Runner's source, and the next attempt
        // replaces that source (and so must not begin) until it is done.
        std::uint32_t w = st.load_word();
        for (int spins = 0;; ++spins) {
            if (w & TaskStateBase::locked) {
                // The holder may be running a user's stop callback: yield
                // rather than spin at full speed behind a slow one.
                if (spins < 64) {
                    cpu_relax();
                } else {
                    std::this_thread::yield();
                }
                w = st.load_word();
                continue;
            }
            if (w & TaskStateBase::claimed) {  // cancelled or timed out meanwhile
                r.timeout_fired.store(false, std::memory_order_relaxed);
                return AttemptEnd::lost;
            }
            const bool fired = r.timeout_fired.load(std::memory_order_acquire);
            const bool timed_out = fired || (limit != 0 && steady_ns() >= limit);
            std::exception_ptr e = timed_out ? std::make_exception_ptr(TaskTimeout{}) : error;
            const bool retry = e && retry_wanted(st, e);
            const std::uint32_t next = (w & ~TaskStateBase::started) | (retry ? 0u : TaskStateBase::claimed);
            if (!st.try_replace(w, next)) continue;
            if (fired) r.timeout_fired.store(false, std::memory_order_relaxed);
            if (retry) {
                st.next_attempt(r.slot);
                return AttemptEnd::retry;
            }
            if (!e) return AttemptEnd::won;
            st.store_error(std::move(e));
            return timed_out ? AttemptEnd::won_timeout : AttemptEnd::won_error;
        }
    }

    bool retry_wanted(const TaskStateBase& st, const std::exception_ptr& error) const noexcept {
        if (st.attempt() >= st.max_attempts_) return false;
        if (st.deadline_ns_ && steady_ns() >= st.deadline_ns_) return false;
        if (!options_.retry_if) return default_retryable(error);
        try {
            return options_.retry_if(error);
        } catch (...) {
            print_task_error("PoolOptions::retry_if threw; not retrying", std::current_exception());
            return false;
        }
    }

    void schedule_retry(Item&& item, unsigned failed_attempt) {
        // The retry holds a place from now, through its back-off, without
        // waiting for one: it was accepted long ago.
        if (admission_.bounded()) {
            admission_.force_take();
            if (drops_oldest()) admission_.track(item.state.get());
        }
        auto delay = options_.retry_backoff;
        for (unsigned i = 1; i < failed_attempt && delay.count() > 0 && delay < std::chrono::hours(1); ++i) delay *= 2;
        if (delay.count() <= 0) {
            repush(std::move(item));
            return;
        }
        Event ev;
        ev.at = add_saturated(steady_ns(), delay.count());
        ev.kind = EventKind::repush;
        ev.item.emplace(std::move(item));
        schedule(std::move(ev));
        // shutdown_now() sets draining_ before it makes the retries due: a
        // retry it missed was scheduled after, and sees draining_ here.
        if (draining_.load(std::memory_order_seq_cst)) fire_retries_now();
    }

    void fire_retries_now() {
        supervisor_.fire_early([](const Event& e) { return e.kind == EventKind::repush; });
    }

    bool other_available(std::size_t w) const noexcept {
        const std::size_t n = active_.load(std::memory_order_acquire);
        for (std::size_t i = 0; i < n; ++i) {
            if (i != w && slots_[i].down.load(std::memory_order_relaxed) == 0) return true;
        }
        return false;
    }

    /// Queues a task again (a retry, or a task re-dispatched away from a
    /// down worker) without counting it as a new submission. Never refused
    /// for a closed pool: the task was accepted before.
    /// Where the task went (any_worker if it was resolved instead).
    Placement repush(Item&& item, bool holding_runners_lock = false) {
        TaskInfo info = item.state ? item.state->info() : TaskInfo{};
        item.submitted_ns = submit_stamp();
        try {
            const Placement where = queue_.push(std::move(item), info, workers());
            wake_for(where);
            // Under runners_mutex_ the set of workers cannot change under us.
            if (!holding_runners_lock) adopt_if_orphaned(where);
            return where;
        } catch (...) {
            // The distributor did not keep it (requirement 4): resolve it.
            fail_unstarted(std::move(item), std::current_exception());
            return Placement::any();
        }
    }

    /// Resolves a task that is not running with `error`, counted as failed.
    void fail_unstarted(Item&& item, std::exception_ptr error) noexcept {
        if (!item.state) {
            left_queue();
            report_error(error);
            failed_other_.fetch_add(1, std::memory_order_seq_cst);
            notify_balance();
            return;
        }
        const std::uint32_t old = item.state->lock_unless_claimed();
        if (old & TaskStateBase::claimed) {
            item.state.release();
            return;
        }
        item.state->set_flags(TaskStateBase::claimed);
        item.state->unlock();
        left_queue();
        resolve_claimed(std::move(item.state), std::move(error), failed_other_);
    }

    /// shutdown_now(): resolve a queued task TaskCancelled without running
    /// it, and hand its payload to the caller.
    void discard(Item&& item) noexcept {
        if (item.state) {
            const std::uint32_t old = item.state->transition_unless_claimed(TaskStateBase::claimed, 0);
            if (old & TaskStateBase::claimed) {
                item.state.release();  // already resolved while queued
                return;
            }
        }
        left_queue();
        {
            std::lock_guard lock(drained_mutex_);
            ++drained_count_;
            if (drain_sink_) {
                try {
                    drain_sink_->push_back(std::move(payload_of(item)));
                } catch (...) {
                    print_task_error("shutdown_now() could not keep a task it cancelled", std::current_exception());
                }
            }
        }
        // Not reported to on_error: a cancel is the caller's own doing.
        if (item.state) item.state->store_error(std::make_exception_ptr(TaskCancelled{}));
        cancelled_.fetch_add(1, std::memory_order_seq_cst);
        if (item.state) item.state.publish();
        notify_balance();
    }

    /// For a task claimed by the caller: count it, store the error, publish.
    template <class S>
    void resolve_claimed(StateRef<S>&& ref, std::exception_ptr error, std::atomic<std::uint64_t>& counter) noexcept {
        S* st = ref.get();
        st->store_error(error);
        if (st->is_detached()) report_error(error);
        counter.fetch_add(1, std::memory_order_seq_cst);
        ref.publish();
        notify_balance();
    }

    // ---- a bounded queue -------------------------------------------------------

    enum class Admit { taken, refused, run_here };

    /// Takes a place in a full-or-not bounded queue, applying the overflow
    /// policy when it is full. Throws QueueFull (refusals, when asked to),
    /// PoolClosed (the pool closed while we waited) or WouldDeadlock.
    Admit admit(bool throw_if_full) {
        if (admission_.try_take()) return Admit::taken;
        switch (options_.overflow) {
            case Overflow::block: {
                if (current_pool == this) {
                    throw WouldDeadlock(
                        "taskdist: a task blocked on its own pool's full queue could wait for itself; "
                        "use another overflow policy, or submit from outside the pool");
                }
                const auto deadline = options_.block_timeout.count() > 0
                                          ? deadline_after(options_.block_timeout)
                                          : std::chrono::steady_clock::time_point::max();
                if (admission_.take_waiting(deadline, [this] { return closed(); })) return Admit::taken;
                if (closed()) throw PoolClosed();
                break;
            }
            case Overflow::reject:
                break;
            case Overflow::caller_runs:
                return Admit::run_here;
            case Overflow::drop_oldest:
                for (;;) {
                    if (admission_.try_take()) return Admit::taken;
                    StateHold victim = admission_.claim_oldest();
                    if (!victim.get()) {
                        // Every place is held by a task a worker is just
                        // starting: they leave at once, so do not wait.
                        admission_.force_take();
                        return Admit::taken;
                    }
                    TaskStateBase& v = *victim.get();
                    const auto e = std::make_exception_ptr(TaskRejected{});
                    v.store_error(e);
                    if (v.is_detached()) report_error(e);
                    rejected_.fetch_add(1, std::memory_order_seq_cst);
                    left_queue();
                    v.publish();
                    notify_balance();
                }
        }
        refused_.fetch_add(1, std::memory_order_relaxed);
        if (throw_if_full) throw QueueFull();
        return Admit::refused;
    }

    /// A task left the queue (or was resolved while in it): its place is free.
    void left_queue() noexcept {
        if (admission_.bounded()) admission_.give_back();
    }

    /// Overflow::caller_runs: runs the task on this thread, now. It counts as
    /// submitted and as completed or failed; no timeout, retry or cancel
    /// applies (it is claimed before it runs, and the caller is busy).
    void run_on_caller(Item&& item, const TaskInfo& info) {
        submitted_.add(1);
        if (closed_.load(std::memory_order_seq_cst)) {
            undo_submit();
            throw PoolClosed();
        }
        // Accepted like a queued task, so observed like one (observer.hpp).
        if (observer_) [[unlikely]] observe_submit(info);
        ran_on_caller_.fetch_add(1, std::memory_order_relaxed);
        TaskStateBase* st = item.state.get();
        if (st) {
            const std::uint32_t old = st->transition_unless_claimed(TaskStateBase::claimed, 0);
            if (old & TaskStateBase::claimed) {
                // Cancelled (by its stop token) before it could run.
                item.state.release();
                return;
            }
        }
        std::stop_source stop;
        TaskContext ctx(TaskContext::on_caller, 1, &stop);
        // Inside the try, so that even a payload whose move throws leaves
        // the task resolved (with that exception) rather than counted and lost.
        std::optional<Item> task;
        std::exception_ptr error;
        try {
            task.emplace(unboxed(std::move(item)));
            Worker handler = invoker_.make_worker(TaskContext::on_caller);
            invoker_(handler, *task, ctx, false);
        } catch (...) {
            error = std::current_exception();
        }
        // NOLINTNEXTLINE(bugprone-use-after-move): item is read only when unboxed() threw, before it moved item's state out
        settle_claimed(task ? *task : item, std::move(error));
    }

    /// For a task this thread claimed and then ran itself (caller_runs, or a
    /// nested wait): count and publish its outcome, as a worker would.
    void settle_claimed(Item& item, std::exception_ptr error) noexcept {
        TaskStateBase* st = item.state.get();
        if (error && st) st->store_error(error);
        if (error && (!st || st->is_detached())) report_error(error);
        (error ? failed_other_ : completed_other_).fetch_add(1, std::memory_order_seq_cst);
        if (st) item.state.publish();
        notify_balance();
    }

    // ---- cancellation (PoolLink) --------------------------------------------

    void on_cancel(TaskStateBase&, void* site) noexcept override {
        if (site) {
            Runner& r = *static_cast<Runner*>(site);
            // The task's lock is held: its worker cannot end the attempt, so
            // the Runner and its stop source are still this task's.
            r.stop.request_stop();
            // cppcheck-suppress throwInNoexceptFunction ; cppcheck 2.10 follows SharedQueue::try_pop into moodycamel's try_dequeue_bulk, whose catch-and-rethrow runs only if a task's move throws (without the bulk dequeue all five of these reports go)
            schedule_hang_check(r);
            slots_[r.slot].ended_other.fetch_add(1, std::memory_order_seq_cst);
        } else {
            left_queue();  // still queued: it stays there as a tombstone
        }
        cancelled_.fetch_add(1, std::memory_order_seq_cst);
    }

    std::shared_ptr<void> keep_alive() noexcept override { return this->weak_from_this().lock(); }
    void after_resolution() noexcept override { notify_balance(); }

    // ---- nested waits ----------------------------------------------------------
    //
    // A task that waits for a task of its own pool could, with every worker
    // doing the same, wait for ever: the awaited tasks sit in the queue with
    // nobody to run them. Tasks submitted from one of the pool's workers
    // therefore keep their payload in their state (a box) instead of the
    // queue entry, and a worker about to wait for such a task first tries to
    // claim it; if the claim wins (the task has not started), the waiter runs
    // it here, inline, and the queue entry becomes a tombstone. If the task
    // has started, its worker is making progress or is itself a waiter that
    // inlines what it waits for; as waits follow submissions, which form no
    // cycle, some task in every chain of waits is running, so the pool never
    // stalls. Claiming before running makes an inline run final at once:
    // it gets one attempt and no timeout of its own; its stop token is the
    // waiting attempt's, so cancelling the waiter reaches it.

    void run_inline(TaskStateBase& st) noexcept override {
        Runner* r = tl_runner_;
        Worker* handler = tl_handler_;
        // A quarantined thread touches nothing of the pool's; a thread whose
        // handler is not built (its factory or on_worker_start hook waits)
        // leaves the task to another worker.
        if (!r || !handler || (r->phase.load(std::memory_order_acquire) & 3) == phase_quarantined) return;
        // shutdown_now() cancels what is queued: the waiter sees TaskCancelled.
        if (draining_.load(std::memory_order_acquire)) return;
        std::optional<Payload>& b = box_of(st);
        const std::uint32_t old = st.lock_unless_claimed();
        if (old & TaskStateBase::claimed) return;
        // Started, or a retry whose payload already left the box: its
        // worker (or the supervisor's back-off) has it.
        if ((old & TaskStateBase::started) || !b.has_value()) {
            st.unlock();
            return;
        }
        st.set_flags(TaskStateBase::claimed);
        st.unlock();
        left_queue();
        ran_inline_.fetch_add(1, std::memory_order_relaxed);

        st.add_ref();  // the handle's owner holds one too: released by publish()
        Item item{std::move(*b), StateRef<State>(static_cast<State*>(&st)), steady_ns()};
        b.reset();
        const std::size_t w = r->slot;
        TaskContext ctx(w, st.attempt(), &r->stop);
        if (observer_) [[unlikely]] {
            observe([&](PoolObserver& o) { o.on_start(WorkerView(&slots_[w], w), st.info()); });
        }
        std::exception_ptr error;
        try {
            invoker_(*handler, item, ctx, false);
        } catch (...) {
            error = std::current_exception();
        }
        // The worker's state is broken: rebuild it once the waiting attempt ends.
        if (error && holds<WorkerFault>(error)) r->inline_fault = true;
        if (observer_) [[unlikely]] {
            observe([&](PoolObserver& o) {
                o.on_finish(WorkerView(&slots_[w], w), st.info(),
                            error ? AttemptOutcome::failed : AttemptOutcome::completed);
            });
        }
        settle_claimed(item, std::move(error));
    }

    using State = std::remove_pointer_t<decltype(std::declval<Item&>().state.get())>;

    static std::optional<Payload>& box_of(TaskStateBase& st) noexcept {
        return *static_cast<std::optional<Payload>*>(st.box_);
    }

    /// The task with its payload in hand: a task submitted from one of our
    /// workers keeps it in its state's box (see run_inline()), and its queue
    /// entry holds an empty shell. Empties the box.
    static Item unboxed(Item&& item) {
        if (item.state && item.state->box_) {
            std::optional<Payload>& b = box_of(*item.state.get());
            if (b) {
                Item out{std::move(*b), std::move(item.state), item.submitted_ns};
                b.reset();
                return out;
            }
        }
        return std::move(item);
    }

    /// The payload of a task that has not started: in its box, if it has one.
    static Payload& payload_of(Item& item) noexcept {
        if (item.state && item.state->box_) {
            std::optional<Payload>& b = box_of(*item.state.get());
            if (b) return *b;
        }
        return item.payload;
    }

    // ---- the supervisor ------------------------------------------------------
    //
    // One thread per pool (a TimerThread), started the first time a timer is
    // needed, asleep until the earliest event. It times out tasks,
    // declares workers hung, and re-queues retries after their back-off. It
    // acts on a task only under the task's lock, and on a running attempt only
    // if the Runner's phase still names that attempt, so an event that comes
    // late finds nothing to do.

    enum class EventKind { run_timeout, queue_deadline, hang_check, repush, scale_tick };

    struct Event {
        std::int64_t at = 0;
        EventKind kind = EventKind::repush;
        StateHold state;
        std::shared_ptr<Runner> runner;
        std::uint64_t seq = 0;
        std::optional<Item> item;
    };

    std::shared_ptr<Runner> live_runner(std::size_t w) {
        std::lock_guard lock(runners_mutex_);
        return live_[w];
    }

    void schedule(Event&& ev) {
        // Dropped once stopping: that is only after every task resolved, so
        // nothing is left to time.
        (void)supervisor_.schedule(std::move(ev));
    }

    void schedule_hang_check(Runner& r) {
        // Called with a task lock held, on the thread that requested the
        // stop; r is alive (its attempt cannot end meanwhile).
        Event ev;
        ev.at = add_saturated(steady_ns(), options_.hang_grace.count());  // max: never
        ev.kind = EventKind::hang_check;
        ev.runner = live_runner(r.slot);
        if (ev.runner.get() != &r) return;  // already replaced
        ev.seq = r.phase.load(std::memory_order_acquire) >> 2;
        schedule(std::move(ev));
    }

    /// The events left are timers of resolved tasks; a pending retry cannot
    /// be among them (the pool was balanced), but if one were, dropping it
    /// would resolve its handle.
    void stop_supervisor() noexcept { supervisor_.stop(); }

    /// The supervisor's Fire (nested, so it may call handle()). It holds the
    /// core while it handles an event: a hook run from there (on_replace, an
    /// observer) may shut the pool down, which detaches this thread, and the
    /// owner may then drop the pool before the hook has returned. The core
    /// is then destroyed here, when `keep` goes.
    struct Fire {
        PoolCore* core;
        void operator()(Event&& ev) const {
            const auto keep = core->weak_from_this().lock();
            if (!keep) return;  // being destroyed: its stop_supervisor() is about to join this thread
            keep->handle(std::move(ev));
        }
    };

    void handle(Event&& ev) {
        switch (ev.kind) {
            case EventKind::repush:
                repush(std::move(*ev.item));
                break;
            case EventKind::queue_deadline:
                expire_queued(*ev.state.get());
                break;
            case EventKind::run_timeout:
                expire_running(*ev.state.get(), *ev.runner, ev.seq);
                break;
            case EventKind::hang_check:
                check_hung(ev.runner, ev.seq);
                break;
            case EventKind::scale_tick:
                scale_tick();
                break;
        }
    }

    void expire_queued(TaskStateBase& st) {
        const std::uint32_t old = st.lock_unless_claimed();
        if (old & TaskStateBase::claimed) return;
        if (old & TaskStateBase::started) {
            st.unlock();  // running: its run timeout covers the deadline
            return;
        }
        st.set_flags(TaskStateBase::claimed);
        st.unlock();
        left_queue();
        const auto e = std::make_exception_ptr(TaskTimeout{});
        st.store_error(e);
        if (st.is_detached()) report_error(e);
        timed_out_.fetch_add(1, std::memory_order_seq_cst);
        st.publish();
        notify_balance();
    }

    void expire_running(TaskStateBase& st, Runner& r, std::uint64_t seq) {
        const std::uint32_t old = st.lock_unless_claimed();
        if (old & TaskStateBase::claimed) return;
        if (!(old & TaskStateBase::started) || st.site_ != &r ||
            r.phase.load(std::memory_order_acquire) != ((seq << 2) | phase_running)) {
            st.unlock();  // that attempt already ended
            return;
        }
        const auto e = std::make_exception_ptr(TaskTimeout{});
        if (retry_wanted(st, e)) {
            // Let the handler return (or hang) first: the retry is queued
            // when the attempt ends, by the worker or by check_hung().
            r.timeout_fired.store(true, std::memory_order_release);
            r.stop.request_stop();
            schedule_hang_check(r);
            st.unlock();
            return;
        }
        st.set_flags(TaskStateBase::claimed);
        r.stop.request_stop();
        schedule_hang_check(r);
        st.unlock();
        st.store_error(e);
        if (st.is_detached()) report_error(e);
        slots_[r.slot].ended_other.fetch_add(1, std::memory_order_seq_cst);
        timed_out_.fetch_add(1, std::memory_order_seq_cst);
        st.publish();
        notify_balance();
    }

    /// hang_grace after a stop request: if the attempt is still running, the
    /// thread is quarantined and a fresh one takes the slot.
    void check_hung(const std::shared_ptr<Runner>& rp, std::uint64_t seq) {
        Runner& r = *rp;
        std::uint64_t expect = (seq << 2) | phase_running;
        if (!r.phase.compare_exchange_strong(expect, (seq << 2) | phase_quarantined, std::memory_order_acq_rel)) {
            return;  // it returned in time
        }
        // From here the old thread touches nothing of the pool's; its item's
        // state is ours (the payload may still be in use by the handler).
        const std::size_t w = r.slot;
        WorkerSlot& s = slots_[w];
        Item& item = *r.current;
        TaskStateBase* st = item.state.get();
        const std::uint32_t old = st->lock();
        st->site_ = nullptr;
        st->clear_flags(TaskStateBase::started);
        const bool retry_pending = r.timeout_fired.load(std::memory_order_acquire);
        if (old & TaskStateBase::claimed) {
            st->unlock();
            item.state.release();
        } else if (retry_pending && Invoker::payload_survives_call &&
                   retry_wanted(*st, std::make_exception_ptr(TaskTimeout{}))) {
            st->next_attempt(w);
            st->unlock();
            s.ended_other.fetch_add(1, std::memory_order_seq_cst);
            retried_.fetch_add(1, std::memory_order_seq_cst);
            // The handler was given a copy: the original payload is intact.
            schedule_retry(Item{std::move(item.payload), std::move(item.state), 0}, st->attempt() - 1);
        } else {
            st->set_flags(TaskStateBase::claimed);
            st->unlock();
            s.ended_other.fetch_add(1, std::memory_order_seq_cst);
            if (retry_pending) {
                resolve_claimed(std::move(item.state), std::make_exception_ptr(TaskTimeout{}), timed_out_);
            } else {
                // Only shutdown_now() asks a running task to stop without
                // resolving it (a timeout resolves it, or leaves a retry
                // pending; a cancel resolves it). Its hung tasks read as
                // cancelled, as do the queued ones it cancels, not as timed
                // out: they had no timeout (found by the soak test).
                // Not reported to on_error: as with discard(), the stop was
                // the caller's own doing.
                st->store_error(std::make_exception_ptr(TaskCancelled{}));
                cancelled_.fetch_add(1, std::memory_order_seq_cst);
                item.state.publish();
                notify_balance();
            }
        }
        // The slot's counters are ours until the new thread starts.
        WorkerSlot::bump(s.returned, 1, std::memory_order_release);
        if constexpr (requires(Queue& q) { q.done(w); }) queue_.done(w);
        s.replaced_hung.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(runners_mutex_);
            reap_quarantined_locked();
            quarantined_.push_back(rp);
        }
        r.life.store(2, std::memory_order_release);
        unpark_all(r.life);
        try {
            spawn(w);
        } catch (...) {
            print_task_error("could not start a thread to replace a hung worker", std::current_exception());
        }
        notify_replace(w, ReplaceReason::hung, s.replacements());
        notify_balance();
    }

    // ---- shutdown ------------------------------------------------------------

    void join_workers() noexcept {
        for (;;) {
            std::shared_ptr<Runner> r;
            {
                std::lock_guard lock(runners_mutex_);
                for (auto& c : live_) {
                    if (c && c->thread.joinable()) {
                        r = c;
                        break;
                    }
                }
                for (std::size_t i = 0; !r && i < retired_.size(); ++i) {
                    if (retired_[i]->thread.joinable()) r = retired_[i];
                }
            }
            if (!r) return;
            // Until it exits, or is quarantined (then live_ has its successor).
            for (std::uint32_t l = r->life.load(std::memory_order_acquire); l == 0;
                 l = r->life.load(std::memory_order_acquire)) {
                park(r->life, 0);
            }
            std::lock_guard lock(runners_mutex_);
            if (r->life.load(std::memory_order_acquire) == 1 && r->thread.joinable()) r->thread.join();
        }
    }

    /// Joins the threads given up as hung whose handler has since returned
    /// (they are exiting, or gone): joined only at shutdown, a long-lived
    /// pool kept one thread stack mapped per hang (100 hangs: 936 MiB).
    void reap_quarantined_locked() noexcept {
        std::erase_if(quarantined_, [](const std::shared_ptr<Runner>& q) {
            if (q->life.load(std::memory_order_acquire) != 3) return false;
            if (q->thread.joinable()) q->thread.join();
            return true;
        });
    }

    void wait_quarantined() noexcept {
        const auto deadline = deadline_after(options_.quarantine_wait);
        std::vector<std::shared_ptr<Runner>> list;
        {
            std::lock_guard lock(runners_mutex_);
            list = quarantined_;
        }
        for (auto& r : list) {
            for (std::uint32_t l = r->life.load(std::memory_order_acquire); l != 3;
                 l = r->life.load(std::memory_order_acquire)) {
                if (!park_until(r->life, l, deadline)) break;
            }
            std::lock_guard lock(runners_mutex_);
            if (!r->thread.joinable()) continue;
            if (r->life.load(std::memory_order_acquire) == 3) {
                r->thread.join();
            } else {
                // Left behind: it holds the core (and so everything it uses)
                // alive, and exits by itself when its handler returns.
                r->thread.detach();
            }
        }
    }

    // ---- the sleep / wake protocol -------------------------------------
    //
    // A worker that finds nothing to do spins briefly, then:
    //   1. sets its slot's `sleeping` to 1 and bumps `sleepers_`;
    //   2. issues a heavy fence, then tries the queue once more;
    //   3. if that finds a task (or the pool may exit), it takes `sleeping`
    //      back to 0 and goes on; otherwise it parks while `sleeping` is 1.
    // A producer pushes, issues a light fence, then reads `sleeping` (of
    // the worker it targeted, or of any worker when `sleepers_` > 0) and, if
    // it swaps a 1 to 0, wakes that worker. The two fences (an asymmetric
    // pair, see platform.hpp; two full fences where the system has none)
    // order the producer's push and the worker's `sleeping` store: either
    // the worker's re-check sees the task, or the producer sees the worker
    // asleep. The swap to 0 makes exactly one party responsible for each wake.

    static constexpr int spin_rounds = 64;

    std::optional<Item> spin_pop(std::size_t w) {
        for (int i = 0; i < spin_rounds; ++i) {
            cpu_relax();
            if (auto item = pop_or_steal(w)) return item;
        }
        std::this_thread::yield();
        return pop_or_steal(w);
    }

    /// Worker w's own task, else one it steals (Distributor item 9). Only
    /// from w's own loop, while it is healthy.
    std::optional<Item> pop_or_steal(std::size_t w) {
        std::optional<Item> item = queue_.try_pop(w);
        if constexpr (requires(Queue& q) { q.try_steal(w); }) {
            // Scaled away: what it took would only be swept back.
            if (!item && w < active_.load(std::memory_order_acquire)) item = queue_.try_steal(w);
        }
        return item;
    }

    std::optional<Item> sleep(std::size_t w) {
        WorkerSlot& s = slots_[w];
        s.sleeping.store(1, std::memory_order_seq_cst);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        heavy_fence();  // pairs with the producer's light_fence() in wake_for()
        if (auto item = pop_or_steal(w)) {
            cancel_sleep(s);
            return item;
        }
        // Scaled away: pairs with set_active(), which stores active_ and then
        // tries to wake us, as a producer does.
        if (exit_ready() || w >= active_.load(std::memory_order_seq_cst)) {
            cancel_sleep(s);
            return std::nullopt;
        }
        s.idle_since.store(steady_ns(), std::memory_order_relaxed);
        while (s.sleeping.load(std::memory_order_acquire) == 1) park(s.sleeping, 1);
        s.idle_since.store(0, std::memory_order_relaxed);
        return std::nullopt;
    }

    void cancel_sleep(WorkerSlot& s) noexcept {
        // If the swap finds 0, a waker already took the duty (and the count).
        if (s.sleeping.exchange(0, std::memory_order_seq_cst) == 1) sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }

    void wake_for(Placement where) noexcept {
        // Pairs with the heavy fence in sleep(): either the worker's re-check
        // sees the task, or we see it asleep and wake it. Light: this runs on
        // every push, going to sleep is rare.
        light_fence();
        if (where.is_any()) {
            wake_any();
        } else {
            wake(where.worker);
        }
    }

    /// Worker w has just taken a task. Under a policy that places tasks on
    /// one worker but lets idle ones take them (try_steal), an idle worker
    /// that looked while w was between tasks, or busy popping, left w's
    /// queue to w and may be asleep now, while w starts a task that may run
    /// for long with others queued behind it: no push wakes it, they were
    /// placed on w. So wake one sleeper while w has tasks queued.
    void offer_surplus(std::size_t w) noexcept {
        if constexpr (requires(Queue& q) { q.try_steal(w); }) {
            // Pairs with the heavy fence in sleep(): either the sleeper's
            // re-check sees w's task taken (and steals), or we see it asleep.
            light_fence();
            if (sleepers_.load(std::memory_order_seq_cst) != 0 && queue_.queued(w) != 0) wake_any();
        } else {
            (void)w;
        }
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
        const std::size_t n = active_.load(std::memory_order_acquire);
        std::size_t start = wake_rotor_.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t w = (start + i) % n;
            if (slots_[w].down.load(std::memory_order_relaxed)) continue;
            if (wake(w)) return;
        }
        // No healthy sleeper. If no worker is healthy at all, a down one
        // must see the task (to re-dispatch or fail it).
        if (workers().available_count() > 0) return;
        for (std::size_t i = 0; i < n; ++i) {
            if (wake((start + i) % n)) return;
        }
    }

    void wake_all() noexcept {
        for (std::size_t w = 0; w < cap_; ++w) wake(w);
    }

    // ---- accounting --------------------------------------------------

    std::uint64_t resolved_total() const noexcept {
        std::uint64_t r = 0;
        const std::size_t hw = high_water_.load(std::memory_order_acquire);
        for (std::size_t w = 0; w < hw; ++w) r += slots_[w].resolved();
        return r + timed_out_.load(std::memory_order_seq_cst) + cancelled_.load(std::memory_order_seq_cst) +
               failed_other_.load(std::memory_order_seq_cst) + completed_other_.load(std::memory_order_seq_cst) +
               rejected_.load(std::memory_order_seq_cst);
    }

    /// Every accepted task has resolved. Resolved is read first: it can only
    /// lag submitted, so equality means nothing was outstanding.
    bool balanced() const noexcept {
        std::uint64_t r = resolved_total();
        return r == submitted_.sum();
    }

    void wait_unpaused(std::size_t w) noexcept {
        // close() stores closed_ before it clears the flag, so a pause()
        // racing with it cannot leave us parked: we re-check closed_ here.
        // A slot scaled away is woken the same way, and leaves.
        while (paused_.load(std::memory_order_seq_cst) != 0 && !closed_.load(std::memory_order_seq_cst) &&
               w < active_.load(std::memory_order_seq_cst)) {
            park(paused_, 1);
        }
    }

    bool exit_ready() const noexcept { return closed_.load(std::memory_order_seq_cst) && balanced(); }

    void close() noexcept {
        closed_.store(true, std::memory_order_seq_cst);
        resume();
        if (admission_.bounded()) admission_.wake_waiters();
        wake_all();
    }

    /// A task resolved, or a submission was undone: tell whoever waits for
    /// the balance.
    void notify_balance() noexcept {
        if (idle_waiters_.load(std::memory_order_seq_cst) > 0 && balanced()) {
            idle_epoch_.fetch_add(1, std::memory_order_release);
            unpark_all(idle_epoch_);
        }
        if (closed_.load(std::memory_order_seq_cst)) wake_all();
    }

    void undo_submit() noexcept {
        submitted_.sub(1);
        notify_balance();
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

    void notify_replace(std::size_t w, ReplaceReason why, std::uint64_t count) noexcept {
        if (observer_) [[unlikely]] {
            observe([&](PoolObserver& o) { o.on_worker_replace(ReplaceEvent{w, why, count}); });
        }
        if (!options_.on_replace) return;
        try {
            options_.on_replace(ReplaceEvent{w, why, count});
        } catch (...) {
            print_task_error("PoolOptions::on_replace threw", std::current_exception());
        }
    }

    // ---- scaling ---------------------------------------------------------------
    //
    // Slots [0, active_) have workers. Growing gives the next slots threads;
    // shrinking lowers active_ and wakes the slots above it, whose threads
    // leave at their next task boundary. Producers pick among the first
    // active_ slots (WorkerSet::size()), so a shrink moves no task by
    // itself; what waits in a departing slot's own queue is handed to the
    // remaining workers (repushed) by that slot's thread, once as its owner
    // and once more, under runners_mutex_, after it has let go of the slot.
    // A producer that raced the shrink and placed a task on a departed slot
    // sees active_ below the slot after its push (the push, a fence, then
    // the read, against the shrink's store before the thread's sweeps) and
    // hands the task on itself, under runners_mutex_, if the slot has no
    // owner any more. So a lane is popped by its worker while it has one,
    // and otherwise only under runners_mutex_: one consumer at a time
    // through try_pop(). Thieves (LeastBusy) may take from any lane too,
    // departed ones included; the lane's own lock keeps them apart.

    bool scales() const noexcept { return options_.min_workers < options_.max_workers; }

    /// Under scale_mutex_. Throws if a thread cannot be started (the pool
    /// then has the workers it could start).
    void set_active(std::size_t n) {
        std::unique_lock lock(runners_mutex_);
        if (closed()) return;
        const std::size_t now = active_.load(std::memory_order_acquire);
        if (n > now) {
            for (std::size_t k = now; k < n; ++k) {
                active_.store(k + 1, std::memory_order_seq_cst);
                if (high_water_.load(std::memory_order_relaxed) < k + 1) {
                    high_water_.store(k + 1, std::memory_order_release);
                }
                std::shared_ptr<Runner>& cur = live_[k];
                if (cur && !cur->retired) continue;  // its thread had not left yet: it stays
                if (cur) retired_.push_back(std::move(cur));
                try {
                    spawn_locked(k);
                } catch (...) {
                    active_.store(k, std::memory_order_seq_cst);
                    adopt_locked(k);
                    throw;
                }
            }
        } else if (n < now) {
            active_.store(n, std::memory_order_seq_cst);
            lock.unlock();
            full_fence();
            for (std::size_t k = n; k < now; ++k) wake(k);
            unpark_all(paused_);
        }
    }

    /// A slot's thread found its slot scaled away: hands the slot's queued
    /// tasks on, and lets go of the slot unless it was brought back.
    bool retire(Runner& r) {
        const std::size_t w = r.slot;
        hand_back(w);
        sweep_lane(w, false);  // as the lane's owner
        std::lock_guard lock(runners_mutex_);
        if (w < active_.load(std::memory_order_acquire)) return false;
        r.retired = true;
        // Anything a producer placed here after the sweep above; from now on
        // the lane has no owner.
        sweep_lane(w, true);
        return true;
    }

    /// Worker w stops taking tasks for a while (it leaves, or is down): a
    /// distributor that keeps tasks per worker beyond queued(w) (SharedQueue's
    /// cache) gives them back, and a sleeper is woken for them.
    void hand_back(std::size_t w) noexcept {
        if constexpr (requires(Queue& q) { q.hand_back(w); }) {
            queue_.hand_back(w);
            wake_for(Placement::any());
        }
    }

    void sweep_lane(std::size_t w, bool holding_runners_lock) noexcept {
        // queued(w) counts tasks for w alone: a shared queue is left alone.
        // Stops if the slot is brought back meanwhile (its tasks would come
        // straight back), and takes at most what was there at the start.
        for (std::size_t n = queue_.queued(w); n > 0 && w >= active_.load(std::memory_order_acquire); --n) {
            // cppcheck-suppress throwInNoexceptFunction ; cppcheck 2.10 follows SharedQueue::try_pop into moodycamel's try_dequeue_bulk, whose catch-and-rethrow runs only if a task's move throws (without the bulk dequeue all five of these reports go)
            std::optional<Item> item = queue_.try_pop(w);
            if (!item) break;
            if (draining_.load(std::memory_order_acquire)) {
                discard(std::move(*item));
            } else {
                repush(std::move(*item), holding_runners_lock);
            }
        }
    }

    /// After a push to one worker's queue: if that worker was scaled away
    /// meanwhile, make sure the task reaches one that stays.
    void adopt_if_orphaned(Placement where) noexcept {
        if (where.is_any() || where.worker < active_.load(std::memory_order_seq_cst)) return;
        std::lock_guard lock(runners_mutex_);
        // cppcheck-suppress throwInNoexceptFunction ; cppcheck 2.10 follows SharedQueue::try_pop into moodycamel's try_dequeue_bulk, whose catch-and-rethrow runs only if a task's move throws (without the bulk dequeue all five of these reports go)
        adopt_locked(where.worker);
    }

    /// Under runners_mutex_: sweeps slot k's queue if the slot has no worker.
    void adopt_locked(std::size_t k) noexcept {
        if (k < active_.load(std::memory_order_acquire)) return;  // brought back: its worker has it
        const std::shared_ptr<Runner>& owner = live_[k];
        if (owner && !owner->retired) return;  // its thread sweeps when it leaves
        // cppcheck-suppress throwInNoexceptFunction ; cppcheck 2.10 follows SharedQueue::try_pop into moodycamel's try_dequeue_bulk, whose catch-and-rethrow runs only if a task's move throws (without the bulk dequeue all five of these reports go)
        sweep_lane(k, true);
    }

    void schedule_scale_tick() {
        Event ev;
        ev.at = add_saturated(steady_ns(), options_.scale_up_after.count());  // max: never
        ev.kind = EventKind::scale_tick;
        schedule(std::move(ev));
    }

    /// The supervisor's periodic check of a scaling pool. Grows when tasks
    /// queued at the last check have not all started since (so one has
    /// waited at least scale_up_after), by as many workers as such tasks;
    /// else shrinks by one worker per worker idle for idle_timeout.
    void scale_tick() noexcept {
        if (closed()) return;
        {
            std::lock_guard scale(scale_mutex_);
            const std::size_t n = active_.load(std::memory_order_acquire);
            const std::size_t hw = high_water_.load(std::memory_order_acquire);
            std::uint64_t departed = ran_inline_.load(std::memory_order_relaxed);
            std::uint64_t running = 0;
            const std::uint64_t resolved = resolved_total();
            for (std::size_t w = 0; w < hw; ++w) {
                const WorkerSlot& sl = slots_[w];
                const std::uint64_t ended = sl.completed.load(std::memory_order_acquire) +
                                            sl.failed.load(std::memory_order_acquire) +
                                            sl.ended_other.load(std::memory_order_acquire);
                const std::uint64_t started = sl.started.load(std::memory_order_acquire);
                departed += started;
                running += started > ended ? started - ended : 0;
            }
            const std::uint64_t submitted = submitted_.sum();
            const std::uint64_t queued = submitted > resolved + running ? submitted - resolved - running : 0;
            const std::uint64_t left = departed - last_departed_;
            std::size_t want = n;
            if (paused()) {
                // Nothing starts while paused: waiting says nothing about capacity.
            } else if (last_queued_ > left && n < cap_) {
                want = static_cast<std::size_t>(std::min<std::uint64_t>(cap_, n + (last_queued_ - left)));
            } else if (n > options_.min_workers) {
                const std::int64_t now = steady_ns();
                std::size_t idle = 0;
                for (std::size_t w = 0; w < n; ++w) {
                    std::int64_t since = slots_[w].idle_since.load(std::memory_order_relaxed);
                    // Restart its idle clock: one retirement per idle_timeout of idleness.
                    if (since != 0 && now - since >= options_.idle_timeout.count() &&
                        slots_[w].idle_since.compare_exchange_strong(since, now, std::memory_order_relaxed)) {
                        ++idle;
                    }
                }
                want = std::max(options_.min_workers, n - std::min(idle, n));
            }
            last_departed_ = departed;
            last_queued_ = queued;
            if (want != n) {
                try {
                    set_active(want);
                } catch (...) {
                    print_task_error("could not start a thread to scale the pool up", std::current_exception());
                }
            }
            std::lock_guard lock(runners_mutex_);
            const std::size_t active = active_.load(std::memory_order_acquire);
            for (std::size_t k = active; k < hw; ++k) {
                // cppcheck-suppress throwInNoexceptFunction ; cppcheck 2.10 follows SharedQueue::try_pop into moodycamel's try_dequeue_bulk, whose catch-and-rethrow runs only if a task's move throws (without the bulk dequeue all five of these reports go)
                if (queue_.queued(k) > 0) adopt_locked(k);
            }
            // Threads of slots that left and were given new ones: they have
            // exited (or are about to), so joining is quick. Under the lock,
            // as join_workers() does, so that only one of us joins each.
            std::erase_if(retired_, [](const std::shared_ptr<Runner>& r) {
                if (r->life.load(std::memory_order_acquire) != 1) return false;
                if (r->thread.joinable()) r->thread.join();
                return true;
            });
        }
        try {
            schedule_scale_tick();
        } catch (...) {
            print_task_error("the pool stops scaling: could not schedule its next check", std::current_exception());
        }
    }

    // ---- observers -----------------------------------------------------------

    template <class Hook>
    void observe(Hook&& hook) noexcept {
        try {
            hook(*observer_);
        } catch (...) {
            print_task_error("a PoolObserver hook threw", std::current_exception());
        }
    }

    /// See submitting_pool.
    void observe_submit(const TaskInfo& info) noexcept {
        const void* const outer = std::exchange(submitting_pool, this);
        observe([&](PoolObserver& o) { o.on_submit(info); });
        submitting_pool = outer;
    }

    void refuse_in_on_submit(const char* call) const {
        if (submitting_pool == this) {
            throw WouldDeadlock(std::string("taskdist: ") + call +
                                " called from PoolObserver::on_submit would wait for the task being submitted");
        }
    }

    void observe_finish(std::size_t w, const TaskStateBase& st, AttemptEnd end) noexcept {
        AttemptOutcome outcome = AttemptOutcome::completed;
        switch (end) {
            case AttemptEnd::won:
                break;
            case AttemptEnd::won_error:
                outcome = AttemptOutcome::failed;
                break;
            case AttemptEnd::won_timeout:
                outcome = AttemptOutcome::timed_out;
                break;
            case AttemptEnd::retry:
                outcome = AttemptOutcome::retrying;
                break;
            default:
                outcome = AttemptOutcome::superseded;
                break;
        }
        // A retry already bumped the attempt number: report the one that ended.
        TaskInfo info = st.info();
        if (end == AttemptEnd::retry) {
            info.attempt -= 1;
            info.previous_worker = TaskInfo::no_worker;
        }
        observe([&](PoolObserver& o) { o.on_finish(WorkerView(&slots_[w], w), info, outcome); });
    }

    static PoolOptions validate(PoolOptions o) {
        if (o.workers == 0) throw std::invalid_argument("taskdist: PoolOptions::workers must be at least 1");
        if (o.min_workers == 0) o.min_workers = o.workers;
        if (o.max_workers == 0) o.max_workers = o.workers;
        if (o.min_workers > o.workers || o.workers > o.max_workers) {
            throw std::invalid_argument(
                "taskdist: PoolOptions needs min_workers <= workers <= max_workers (0 for either means workers)");
        }
        if (o.min_workers < o.max_workers && (o.scale_up_after.count() <= 0 || o.idle_timeout.count() <= 0)) {
            throw std::invalid_argument(
                "taskdist: a scaling pool (min_workers < max_workers) needs positive scale_up_after and idle_timeout");
        }
        if (o.max_attempts == 0) throw std::invalid_argument("taskdist: PoolOptions::max_attempts must be at least 1");
        if (o.default_timeout.count() < 0 || o.hang_grace.count() < 0 || o.quarantine_wait.count() < 0 ||
            o.retry_backoff.count() < 0 || o.restart_backoff.count() < 0 || o.restart_backoff_max.count() < 0) {
            throw std::invalid_argument("taskdist: PoolOptions durations must not be negative");
        }
        if (o.broken_after == 0) throw std::invalid_argument("taskdist: PoolOptions::broken_after must be at least 1");
        if (o.wait_sampling == 0) o.wait_sampling = default_sampling(o.measure_timing);
        if (o.block_timeout.count() < 0) throw std::invalid_argument("taskdist: PoolOptions::block_timeout must not be negative");
        if (o.overflow != Overflow::block && o.overflow != Overflow::reject && o.overflow != Overflow::caller_runs &&
            o.overflow != Overflow::drop_oldest) {
            throw std::invalid_argument("taskdist: PoolOptions::overflow is not one of the Overflow values");
        }
        return o;
    }

    /// PoolOptions::wait_sampling's 0: a timed sample costs two or three
    /// clock reads, and steady_clock's (clock_gettime) cost 2-3 times the
    /// TSC's (see submit_stamp()). On our VMs, whose kernels do not trust
    /// the TSC, timing one in 8 cost W2 11-15% of the throughput,
    /// one in 32 0-8%.
    static std::uint32_t default_sampling(bool timed) noexcept {
        return timed && Ticks::calibrated().is_tsc() ? 8 : 32;
    }

    PoolOptions options_;
    /// options_.observer's target, or null: what the hot path tests.
    PoolObserver* const observer_ = options_.observer.get();
    /// Whether push() reads the clock for every task: someone reads
    /// TaskInfo::submitted_at, or every queue wait is measured.
    const bool stamps_every_task_ =
        reads_submit_time<Dist> || observer_ != nullptr || (options_.measure_timing && options_.wait_sampling == 1);

    /// What run times are read with; calibrated only if timing is on.
    const Ticks ticks_ = options_.measure_timing ? Ticks::calibrated() : Ticks();
    /// A queue entry's submit stamp (Job::submitted_ns): steady_clock where
    /// TaskInfo::submitted_at is read, else Ticks, which cost less to read
    /// (the TSC's 10-12 ns against clock_gettime's 24-28, one task in
    /// wait_sampling per producer) and only a duration is made of them.
    std::int64_t submit_stamp() const noexcept { return stamps_every_task_ ? steady_ns() : ticks_.now(); }
    /// Nanoseconds since `stamp`, a submit_stamp(); `now_ns_read` is steady_ns()
    /// where stamps are steady_clock (the caller has read it already).
    std::uint64_t waited_since(std::int64_t stamp, std::int64_t now_ns_read) const noexcept {
        if (stamps_every_task_) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ns_read - stamp));
        return ticks_.to_ns(ticks_.now() - stamp);
    }
    /// True for one submission in wait_sampling per thread, when timing.
    bool sampled_now() const noexcept {
        if (!options_.measure_timing) return false;
        // A countdown: a division per submit costs more than the rest of it.
        // Shared by the thread's pools: one left over from a pool sampling
        // more sparsely is cut short, so the period here is exact.
        thread_local std::uint32_t left = 0;
        if (left > 1 && left <= options_.wait_sampling) {
            --left;
            return false;
        }
        left = options_.wait_sampling;
        return true;
    }
    /// Worker slots: the most workers the pool can have (max_workers).
    const std::size_t cap_ = options_.max_workers;
    std::unique_ptr<WorkerSlot[]> slots_;
    Queue queue_;
    Admission admission_;
    Invoker invoker_;

    std::mutex runners_mutex_;
    std::vector<std::shared_ptr<Runner>> live_;
    std::vector<std::shared_ptr<Runner>> quarantined_;
    /// Threads of slots that were scaled away and then given a new thread
    /// before the old one was joined.
    std::vector<std::shared_ptr<Runner>> retired_;
    /// Slots [0, active_) have workers; the rest were scaled away (or never
    /// used). Changed under runners_mutex_.
    std::atomic<std::size_t> active_{options_.workers};
    /// Slots that ever had a worker: what stats and the balance sum over.
    std::atomic<std::size_t> high_water_{options_.workers};
    /// Serialises resize() and the scaler's own decisions.
    std::mutex scale_mutex_;
    std::uint64_t last_departed_ = 0;  // scaler state, under scale_mutex_
    std::uint64_t last_queued_ = 0;

    std::atomic<bool> draining_{false};
    std::mutex drained_mutex_;
    std::vector<Payload>* drain_sink_ = nullptr;
    std::size_t drained_count_ = 0;

    TimerThread<Event, Fire> supervisor_{Fire{this}, options_.name + "-sv"};

    StripedCounter submitted_;
    alignas(cache_line) std::atomic<bool> closed_{false};
    Word paused_{0};
    alignas(cache_line) std::atomic<std::uint32_t> sleepers_{0};
    std::atomic<std::size_t> wake_rotor_{0};
    alignas(cache_line) std::atomic<std::uint32_t> idle_waiters_{0};
    Word idle_epoch_{0};
    // Rare events, written by any thread.
    alignas(cache_line) std::atomic<std::uint64_t> timed_out_{0};
    std::atomic<std::uint64_t> cancelled_{0};
    std::atomic<std::uint64_t> failed_other_{0};
    std::atomic<std::uint64_t> retried_{0};
    std::atomic<std::uint64_t> rejected_{0};
    std::atomic<std::uint64_t> completed_other_{0};
    std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> ran_on_caller_{0};
    std::atomic<std::uint64_t> ran_inline_{0};
};

} // namespace taskdist::detail
