// taskdist: WorkerPool<Task, Result, Distributor>: every task goes through
// one handler, like a worker script behind a load balancer.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/pool_core.hpp"
#include "distributor.hpp"
#include "distributors/shared_queue.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "task_context.hpp"
#include "task_group.hpp"
#include "task_handle.hpp"

namespace taskdist {

/// Per-worker state: `factory` makes one State per worker thread (called on
/// that thread when it starts, and again whenever the worker is rebuilt after
/// a WorkerFault or a hang), and `handler` is called as handler(State&, Task)
/// or handler(State&, Task, TaskContext&). Build one with
/// taskdist::per_worker(factory, handler). The factory may take the worker's
/// index (std::size_t) or nothing; several workers call it concurrently. A
/// factory that throws leaves its worker down and is retried with back-off
/// (PoolOptions::restart_backoff; see taskdist::PoolBroken).
template <class Factory, class Handler>
struct PerWorker {
    Factory factory;
    Handler handler;
};

template <class Factory, class Handler>
PerWorker<std::decay_t<Factory>, std::decay_t<Handler>> per_worker(Factory&& factory, Handler&& handler) {
    return {std::forward<Factory>(factory), std::forward<Handler>(handler)};
}

/// What WorkerPool::shutdown_now() hands back: the tasks that were still
/// queued (each resolved TaskCancelled, never started), in no set order.
template <class Task>
struct ShutdownReport {
    std::size_t never_started = 0;
    std::vector<Task> tasks;
};

namespace detail {

template <class R, class Result>
concept ResultConvertible = std::is_void_v<Result> || std::convertible_to<R, Result>;

template <class F>
concept WorkerFactory = std::invocable<F&, std::size_t> || std::invocable<F&>;

template <class F>
decltype(auto) call_factory(F& f, std::size_t worker) {
    if constexpr (std::invocable<F&, std::size_t>) {
        return f(worker);
    } else {
        return f();
    }
}

template <WorkerFactory F>
using factory_state_t = std::decay_t<decltype(call_factory(std::declval<F&>(), std::size_t{}))>;

} // namespace detail

/// A callable a WorkerPool<Task, Result> can run: callable as h(Task) or
/// h(Task, TaskContext&), returning something convertible to Result (any
/// return type when Result is void).
template <class H, class Task, class Result>
concept TaskHandler =
    (std::invocable<H&, Task&&> && detail::ResultConvertible<std::invoke_result_t<H&, Task&&>, Result>) ||
    (std::invocable<H&, Task&&, TaskContext&> &&
     detail::ResultConvertible<std::invoke_result_t<H&, Task&&, TaskContext&>, Result>);

/// A factory + handler pair a WorkerPool<Task, Result> can run: the factory
/// is callable as f(std::size_t worker) or f(), and the handler as
/// h(State&, Task) or h(State&, Task, TaskContext&), returning something
/// convertible to Result (anything when Result is void).
template <class F, class H, class Task, class Result>
concept StatefulTaskHandler =
    detail::WorkerFactory<F> &&
    ((std::invocable<H&, detail::factory_state_t<F>&, Task&&> &&
      detail::ResultConvertible<std::invoke_result_t<H&, detail::factory_state_t<F>&, Task&&>, Result>) ||
     (std::invocable<H&, detail::factory_state_t<F>&, Task&&, TaskContext&> &&
      detail::ResultConvertible<std::invoke_result_t<H&, detail::factory_state_t<F>&, Task&&, TaskContext&>,
                                Result>));

namespace detail {

/// Calls h(args..., task) or h(args..., task, ctx), whichever it takes; for
/// a void Result, whatever h returns is discarded.
template <class Result, class H, class Task, class... Args>
Result invoke_handler(H& h, Task&& task, TaskContext& ctx, Args&... args) {
    if constexpr (std::invocable<H&, Args&..., Task&&, TaskContext&>) {
        if constexpr (std::is_void_v<Result>) {
            (void)h(args..., std::forward<Task>(task), ctx);
        } else {
            return h(args..., std::forward<Task>(task), ctx);
        }
    } else {
        if constexpr (std::is_void_v<Result>) {
            (void)h(args..., std::forward<Task>(task));
        } else {
            return h(args..., std::forward<Task>(task));
        }
    }
}

/// What one worker thread calls for each task.
template <class Task, class Result>
class WorkerHandlerBase {
public:
    virtual ~WorkerHandlerBase() = default;
    virtual Result call(Task&& task, TaskContext& ctx) = 0;
};

/// Makes a WorkerHandlerBase for each worker thread; one per pool.
template <class Task, class Result>
class HandlerSource {
public:
    virtual ~HandlerSource() = default;
    virtual std::unique_ptr<WorkerHandlerBase<Task, Result>> make(std::size_t worker) = 0;
};

/// One handler shared by every worker.
template <class H, class Task, class Result>
class SharedHandler final : public HandlerSource<Task, Result> {
public:
    explicit SharedHandler(H h) : h_(std::move(h)) {}
    std::unique_ptr<WorkerHandlerBase<Task, Result>> make(std::size_t) override { return std::make_unique<Ref>(&h_); }

private:
    struct Ref final : WorkerHandlerBase<Task, Result> {
        explicit Ref(H* handler) : h(handler) {}
        Result call(Task&& task, TaskContext& ctx) override { return invoke_handler<Result>(*h, std::move(task), ctx); }
        H* h;
    };
    H h_;
};

/// One handler over state that each worker makes for itself.
template <class F, class H, class Task, class Result>
class StatefulHandler final : public HandlerSource<Task, Result> {
public:
    StatefulHandler(F f, H h) : f_(std::move(f)), h_(std::move(h)) {}
    std::unique_ptr<WorkerHandlerBase<Task, Result>> make(std::size_t worker) override {
        return std::make_unique<Own>(call_factory(f_, worker), &h_);
    }

private:
    using State = factory_state_t<F>;
    struct Own final : WorkerHandlerBase<Task, Result> {
        Own(State s, H* handler) : state(std::move(s)), h(handler) {}
        Result call(Task&& task, TaskContext& ctx) override {
            return invoke_handler<Result>(*h, std::move(task), ctx, state);
        }
        State state;
        H* h;
    };
    F f_;
    H h_;
};

template <class Task, class Result>
struct HandlerInvoker {
    using Item = Job<Task, TaskState<Result>>;
    using Worker = std::unique_ptr<WorkerHandlerBase<Task, Result>>;
    /// Attempts before the last get a copy, so a hung attempt can be retried.
    static constexpr bool payload_survives_call = std::is_copy_constructible_v<Task>;

    std::unique_ptr<HandlerSource<Task, Result>> source;

    Worker make_worker(std::size_t worker) const { return source->make(worker); }

    void operator()(Worker& h, Item& item, TaskContext& ctx, bool keep_payload) const {
        // Read before the call: once the handler returns, a supervisor that
        // declared this thread hung may be moving item.state out (commit()
        // then says no, and the state is not touched).
        TaskState<Result>* const st = item.state.get();
        auto call = [&]() -> Result {
            if constexpr (std::is_copy_constructible_v<Task>) {
                if (keep_payload) {
                    Task copy(item.payload);
                    return h->call(std::move(copy), ctx);
                }
            }
            return h->call(std::move(item.payload), ctx);
        };
        if constexpr (std::is_void_v<Result>) {
            call();
            if (st && ContextAccess::commit(ctx)) st->store_value();
        } else if (st) {
            Result r = call();
            if (ContextAccess::commit(ctx)) st->store_value(std::move(r));
        } else {
            (void)call();
        }
    }
};

} // namespace detail

/// A pool of worker threads that run one handler over submitted tasks; the
/// Distributor policy decides which worker runs each task.
///
/// Thread-safety: every member function may be called from any thread
/// concurrently, except that the destructor must not race with other calls.
/// The handler is called concurrently from all workers and must be safe for
/// that (per-worker state, see PerWorker, is not shared). Invariants: every
/// accepted task resolves exactly once (its handle gets the value, the
/// exception, TaskTimeout or TaskCancelled; a post()ed failure goes to
/// PoolOptions::on_error and stats()); nothing queued is dropped by
/// shutdown() or the destructor.
template <class Task, class Result, class Dist = SharedQueue>
class WorkerPool {
    using Item = detail::Job<Task, detail::TaskState<Result>>;
    using Core = detail::PoolCore<Item, Dist, detail::HandlerInvoker<Task, Result>>;
    static_assert(std::is_move_constructible_v<Task>, "taskdist::WorkerPool: Task must be move-constructible");
    static_assert(DistributorFor<Dist, Item>,
                  "taskdist::WorkerPool: the third template argument must model taskdist::Distributor "
                  "(see distributor.hpp for the numbered requirements)");

public:
    using task_type = Task;
    using result_type = Result;
    using distributor_type = Dist;

    /// Starts options.workers threads. Throws std::invalid_argument if
    /// options.workers == 0 (or another option is out of range, or retries
    /// are asked of a Task that cannot be copied), or what the distributor's
    /// constructor throws for bad settings.
    template <class Handler>
        requires TaskHandler<Handler, Task, Result>
    explicit WorkerPool(Handler handler, PoolOptions options = {}, Dist distributor = {})
        : core_(make_core(std::make_unique<detail::SharedHandler<Handler, Task, Result>>(std::move(handler)),
                          std::move(options), distributor)) {}

    /// A pool whose workers each own state made by a factory: see PerWorker.
    template <class Factory, class Handler>
        requires StatefulTaskHandler<Factory, Handler, Task, Result>
    explicit WorkerPool(PerWorker<Factory, Handler> per, PoolOptions options = {}, Dist distributor = {})
        : core_((reject_caller_runs(options),
                 make_core(std::make_unique<detail::StatefulHandler<Factory, Handler, Task, Result>>(
                               std::move(per.factory), std::move(per.handler)),
                           std::move(options), distributor))) {}

    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    /// Same as shutdown(): finishes every queued task, then joins.
    ~WorkerPool() {
        if (core_) core_->shutdown_noexcept();
    }

    /// Queues a task and returns its handle. Throws PoolClosed after
    /// shutdown() (the task is then not kept), std::invalid_argument for bad
    /// options, and, when a bounded queue is full (PoolOptions::overflow):
    /// QueueFull under reject (or block past its block_timeout), WouldDeadlock
    /// under block from one of this pool's own tasks. Under caller_runs the
    /// task has run, on this thread, by the time submit() returns.
    /// Thread-safe.
    ///
    /// Nested waits: a task that waits (get(), wait(), wait_for(), or a
    /// TaskGroup's) for a task it submitted to its own pool runs that task
    /// itself, inline, if no worker has started it yet, so fork-join code
    /// cannot starve the pool, even with one worker. A task run that way gets
    /// one attempt and no timeout of its own, shares the waiting task's stop
    /// token and worker state, and counts in PoolStats::ran_inline.
    TaskHandle<Result> submit(Task task, SubmitOptions options = {}) {
        return *submit_impl(std::move(task), options, true);
    }

    /// As submit(), but where submit() would throw QueueFull it returns an
    /// empty optional instead (the task is then dropped unrun). Thread-safe.
    std::optional<TaskHandle<Result>> try_submit(Task task, SubmitOptions options = {}) {
        return submit_impl(std::move(task), options, false);
    }

    /// Queues every task of `tasks` (any input range of values convertible
    /// to Task; moved from when the range yields rvalues) with the same
    /// options, and returns one TaskGroup over exactly those tasks. If a
    /// submit throws part-way (PoolClosed), the tasks already queued still
    /// run and the exception propagates. Thread-safe.
    template <std::ranges::input_range Range>
        requires std::convertible_to<std::ranges::range_reference_t<Range>, Task>
    TaskGroup<Result> submit_batch(Range&& tasks, SubmitOptions options = {}) {
        std::vector<TaskHandle<Result>> handles;
        if constexpr (std::ranges::sized_range<Range>) handles.reserve(std::ranges::size(tasks));
        for (auto&& task : tasks) handles.push_back(submit(Task(std::forward<decltype(task)>(task)), options));
        return TaskGroup<Result>(std::move(handles));
    }

    /// Queues a task without a handle. If it fails (the handler throws, or it
    /// times out), the exception goes to PoolOptions::on_error and is counted
    /// in stats(). Throws as submit() does. Thread-safe.
    void post(Task task, SubmitOptions options = {}) { (void)post_impl(std::move(task), options, true); }

    /// As post(), but where post() would throw QueueFull it returns false
    /// instead (the task is then dropped unrun). Thread-safe.
    bool try_post(Task task, SubmitOptions options = {}) { return post_impl(std::move(task), options, false); }

    /// Blocks until every task submitted before the call has resolved (it
    /// returns at a moment when nothing is queued or running). Throws
    /// WouldDeadlock if called from one of this pool's tasks. Thread-safe.
    void wait_idle() { core_->wait_idle(); }

    /// As wait_idle(), but gives up after `timeout`; true if the pool was
    /// idle in time. Thread-safe.
    template <class Rep, class Period>
    bool wait_idle_for(std::chrono::duration<Rep, Period> timeout) {
        return core_->wait_idle_until(detail::deadline_after(timeout));
    }

    /// Stops starting tasks: workers finish what they are running and then
    /// wait; submissions are still accepted (and count against a bounded
    /// queue), and queued tasks can still be cancelled or time out. A task a
    /// worker was taking at the moment of the call may still start.
    /// wait_idle() waits through a pause. shutdown() and shutdown_now() end
    /// it. Thread-safe.
    void pause() noexcept { core_->pause(); }
    /// Lets the workers start tasks again. Thread-safe.
    void resume() noexcept { core_->resume(); }
    /// True between pause() and resume() (or shutdown). Thread-safe.
    bool paused() const noexcept { return core_->paused(); }

    /// Stops accepting tasks, finishes the queued ones, joins the workers,
    /// and gives hung threads at most PoolOptions::quarantine_wait. Idempotent.
    /// Throws WouldDeadlock from one of this pool's tasks.
    void shutdown() { core_->shutdown(); }

    /// shutdown() with a limit on draining: the workers drain the queue for
    /// at most `drain_timeout`; then what is still queued is cancelled and
    /// handed back exactly as by shutdown_now() (an empty report if the
    /// queue drained in time). Throws WouldDeadlock from one of this pool's
    /// tasks. Thread-safe.
    template <class Rep, class Period>
    ShutdownReport<Task> shutdown(std::chrono::duration<Rep, Period> drain_timeout) {
        ShutdownReport<Task> report;
        report.never_started = core_->shutdown_until(detail::deadline_after(drain_timeout), &report.tasks);
        return report;
    }

    /// Stops accepting; every task still queued resolves TaskCancelled and is
    /// handed back (e.g. to persist it); running tasks have their stop token
    /// requested: one that returns keeps its outcome, one that ignores the
    /// stop past hang_grace resolves TaskCancelled and its thread is left to
    /// quarantine. Waits like shutdown(), so at most about hang_grace +
    /// quarantine_wait for handlers that ignore the stop. A task a worker had
    /// already taken when the call began may still run. Idempotent (a second
    /// call returns what is left: nothing). Throws WouldDeadlock from one of
    /// this pool's tasks.
    ShutdownReport<Task> shutdown_now() {
        ShutdownReport<Task> report;
        report.never_started = core_->shutdown_now(&report.tasks);
        return report;
    }

    /// A consistent snapshot (see PoolStats). Costs O(workers x buckets);
    /// meant for once a second, not per task. Thread-safe.
    PoolStats stats() const { return core_->stats(); }

    /// The options the pool was built with, defaults resolved (a 0
    /// wait_sampling reads as the rate it took). Fixed for the pool's life:
    /// `workers` is the starting count (size() says how many now).
    const PoolOptions& options() const noexcept { return core_->options(); }

    /// Workers now: PoolOptions::workers at start, then as resize() and
    /// the pool's own scaling (min_workers < max_workers) set it. Thread-safe.
    std::size_t size() const noexcept { return core_->size(); }

    /// Sets the number of workers to `n` (1 <= n <= PoolOptions::max_workers,
    /// else std::invalid_argument; PoolClosed after shutdown). Growing starts
    /// threads before it returns. Shrinking retires the highest-numbered
    /// workers at their next task boundary: a running task finishes, and
    /// tasks waiting in a retiring worker's own queue go to the workers that
    /// stay (under Sticky only the keys of the workers that left move). A
    /// scaling pool goes on adjusting from `n` within [min_workers,
    /// max_workers]. Throws std::system_error if a thread cannot be started
    /// (the pool keeps those it started). Thread-safe.
    void resize(std::size_t n) { core_->resize(n); }

private:
    static std::shared_ptr<Core> make_core(std::unique_ptr<detail::HandlerSource<Task, Result>> source,
                                           PoolOptions options, const Dist& distributor) {
        if constexpr (!std::is_copy_constructible_v<Task>) {
            if (options.max_attempts > 1) throw std::invalid_argument(retry_needs_copy);
        }
        auto core = std::make_shared<Core>(std::move(options), distributor,
                                           detail::HandlerInvoker<Task, Result>{std::move(source)});
        core->start();
        return core;
    }

    std::optional<TaskHandle<Result>> submit_impl(Task&& task, const SubmitOptions& options, bool throw_if_full) {
        check(options);
        // From one of our own workers the payload goes in the state, where a
        // nested wait can reach it (see submit()); the queue holds a shell.
        detail::TaskState<Result>* state = core_->on_own_worker()
                                               ? new detail::BoxedState<Task, Result>(std::move(task))
                                               : new detail::TaskState<Result>();
        std::optional<TaskHandle<Result>> handle(detail::make_handle(state));
        // NOLINTNEXTLINE(bugprone-use-after-move): when the state took the task, the queue gets the moved-from shell
        if (core_->push(Item{std::move(task), detail::StateRef<detail::TaskState<Result>>(state), 0},
                        options, throw_if_full) == Core::Pushed::refused) {
            handle.reset();
        }
        return handle;
    }

    bool post_impl(Task&& task, const SubmitOptions& options, bool throw_if_full) {
        check(options);
        detail::StateRef<detail::TaskState<Result>> state;
        if (core_->needs_state(options)) state = detail::StateRef<detail::TaskState<Result>>(new detail::TaskState<Result>(1, true));
        return core_->push(Item{std::move(task), std::move(state), 0}, options, throw_if_full) !=
               Core::Pushed::refused;
    }

    /// The submitting thread has no per-worker state to run a task with.
    static void reject_caller_runs(const PoolOptions& options) {
        if (options.queue_capacity != 0 && options.overflow == Overflow::caller_runs) {
            throw std::invalid_argument(
                "taskdist: Overflow::caller_runs needs a handler without per-worker state: the submitting "
                "thread has no worker state to run the task with");
        }
    }

    void check(const SubmitOptions& options) const {
        Core::check(options);
        if constexpr (!std::is_copy_constructible_v<Task>) {
            if (core_->attempts_for(options) > 1) throw std::invalid_argument(retry_needs_copy);
        }
    }

    static constexpr const char* retry_needs_copy =
        "taskdist: max_attempts > 1 needs a copy-constructible Task (each attempt but the last gets a copy)";

    std::shared_ptr<Core> core_;
};

} // namespace taskdist
