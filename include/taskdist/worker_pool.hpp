// taskdist: WorkerPool<Task, Result, Distributor>: every task goes through
// one handler, like a worker script behind a load balancer.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "detail/pool_core.hpp"
#include "distributor.hpp"
#include "distributors/shared_queue.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "task_context.hpp"
#include "task_handle.hpp"

namespace taskdist {

namespace detail {
template <class R, class Result>
concept ResultConvertible = std::is_void_v<Result> || std::convertible_to<R, Result>;
} // namespace detail

/// A callable a WorkerPool<Task, Result> can run: callable as h(Task) or
/// h(Task, TaskContext&), returning something convertible to Result (any
/// return type when Result is void).
template <class H, class Task, class Result>
concept TaskHandler =
    (std::invocable<H&, Task&&> && detail::ResultConvertible<std::invoke_result_t<H&, Task&&>, Result>) ||
    (std::invocable<H&, Task&&, TaskContext&> &&
     detail::ResultConvertible<std::invoke_result_t<H&, Task&&, TaskContext&>, Result>);

namespace detail {

template <class Task, class Result>
class HandlerBase {
public:
    virtual ~HandlerBase() = default;
    virtual Result call(Task&& task, TaskContext& ctx) = 0;
};

template <class H, class Task, class Result>
class HandlerImpl final : public HandlerBase<Task, Result> {
public:
    explicit HandlerImpl(H h) : h_(std::move(h)) {}
    Result call(Task&& task, TaskContext& ctx) override {
        if constexpr (std::invocable<H&, Task&&, TaskContext&>) {
            if constexpr (std::is_void_v<Result>) {
                (void)h_(std::move(task), ctx);
            } else {
                return h_(std::move(task), ctx);
            }
        } else {
            if constexpr (std::is_void_v<Result>) {
                (void)h_(std::move(task));
            } else {
                return h_(std::move(task));
            }
        }
    }

private:
    H h_;
};

template <class Task, class Result>
struct HandlerInvoker {
    using Item = Job<Task, TaskState<Result>>;
    std::unique_ptr<HandlerBase<Task, Result>> handler;

    void operator()(Item& item, TaskContext& ctx) const {
        if constexpr (std::is_void_v<Result>) {
            handler->call(std::move(item.payload), ctx);
            if (item.state && item.state->try_claim()) item.state->store_value();
        } else if (item.state) {
            Result r = handler->call(std::move(item.payload), ctx);
            if (item.state->try_claim()) item.state->store_value(std::move(r));
        } else {
            (void)handler->call(std::move(item.payload), ctx);
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
/// that. Invariants: every accepted task resolves exactly once (its handle
/// gets the value or the exception; a post()ed failure goes to
/// PoolOptions::on_error and stats().failed); nothing queued is dropped by
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
    /// options.workers == 0, or what the distributor's constructor throws for
    /// bad settings.
    template <class Handler>
        requires TaskHandler<Handler, Task, Result>
    explicit WorkerPool(Handler handler, PoolOptions options = {}, Dist distributor = {})
        : core_(std::make_shared<Core>(
              std::move(options), distributor,
              detail::HandlerInvoker<Task, Result>{
                  std::make_unique<detail::HandlerImpl<Handler, Task, Result>>(std::move(handler))})) {
        core_->start();
    }

    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    /// Same as shutdown(): finishes every queued task, then joins.
    ~WorkerPool() {
        if (core_) core_->shutdown_noexcept();
    }

    /// Queues a task and returns its handle. Throws PoolClosed after
    /// shutdown(); the task is then not kept. Thread-safe.
    TaskHandle<Result> submit(Task task, SubmitOptions options = {}) {
        auto* state = new detail::TaskState<Result>();
        TaskHandle<Result> handle = detail::make_handle(state);
        core_->push(Item{std::move(task), detail::StateRef<detail::TaskState<Result>>(state), detail::now_ns()},
                    options);
        return handle;
    }

    /// Queues a task without a handle. If the handler throws, the exception
    /// goes to PoolOptions::on_error and is counted in stats().failed.
    /// Throws PoolClosed after shutdown(). Thread-safe.
    void post(Task task, SubmitOptions options = {}) {
        core_->push(Item{std::move(task), {}, detail::now_ns()}, options);
    }

    /// Blocks until every task submitted before the call has resolved (it
    /// returns at a moment when nothing is queued or running). Throws
    /// WouldDeadlock if called from one of this pool's tasks. Thread-safe.
    void wait_idle() { core_->wait_idle(); }

    /// Stops accepting tasks, finishes the queued ones, joins the workers.
    /// Idempotent. Throws WouldDeadlock from one of this pool's tasks.
    void shutdown() { core_->shutdown(); }

    /// A consistent snapshot (see PoolStats). Costs O(workers x buckets);
    /// meant for once a second, not per task. Thread-safe.
    PoolStats stats() const { return core_->stats(); }

    /// Number of worker threads.
    std::size_t size() const noexcept { return core_->size(); }

private:
    std::shared_ptr<Core> core_;
};

} // namespace taskdist
