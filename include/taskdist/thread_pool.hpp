// taskdist: ThreadPool, a general-purpose pool of callables, on the same
// engine and distributors as WorkerPool.
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "detail/pool_core.hpp"
#include "detail/thunk.hpp"
#include "distributor.hpp"
#include "distributors/shared_queue.hpp"
#include "options.hpp"
#include "stats.hpp"
#include "task_context.hpp"
#include "task_handle.hpp"

namespace taskdist {

/// A callable ThreadPool can run: f() or f(TaskContext&).
template <class F>
concept PoolCallable = std::move_constructible<std::decay_t<F>> &&
                       (std::invocable<std::decay_t<F>&> || std::invocable<std::decay_t<F>&, TaskContext&>);

namespace detail {

template <class F>
decltype(auto) call_with_context(F& f, TaskContext& ctx) {
    if constexpr (std::invocable<F&, TaskContext&>) {
        return std::invoke(f, ctx);
    } else {
        return std::invoke(f);
    }
}

template <class F>
using callable_result_t = decltype(call_with_context(std::declval<F&>(), std::declval<TaskContext&>()));

struct ThunkInvoker {
    using Item = Job<Thunk, TaskStateBase>;
    struct Worker {};
    /// A hung callable is still running in place: it cannot be retried.
    static constexpr bool payload_survives_call = false;
    Worker make_worker(std::size_t) const noexcept { return {}; }
    void operator()(Worker&, Item& item, TaskContext& ctx, bool) const { item.payload(ctx, item.state.get()); }
};

} // namespace detail

/// A thread pool for code that just wants one: submit any callable, get a
/// TaskHandle of its result. Thread-safety and invariants as WorkerPool's.
template <class Dist = SharedQueue>
class BasicThreadPool {
    using Item = detail::Job<detail::Thunk, detail::TaskStateBase>;
    using Core = detail::PoolCore<Item, Dist, detail::ThunkInvoker>;
    static_assert(sizeof(Item) <= 64, "taskdist: a queued callable should take no more than a cache line's 64 bytes (see Thunk)");
    static_assert(DistributorFor<Dist, Item>,
                  "taskdist::BasicThreadPool: the template argument must model taskdist::Distributor");

public:
    explicit BasicThreadPool(PoolOptions options = {}, Dist distributor = {})
        : core_(std::make_shared<Core>(std::move(options), distributor, detail::ThunkInvoker{})) {
        core_->start();
    }
    BasicThreadPool(const BasicThreadPool&) = delete;
    BasicThreadPool& operator=(const BasicThreadPool&) = delete;
    ~BasicThreadPool() {
        if (core_) core_->shutdown_noexcept();
    }

    /// Queues f and returns a handle to its result (or exception). Throws
    /// PoolClosed after shutdown(), std::invalid_argument for bad options,
    /// and for a full bounded queue what WorkerPool::submit() throws.
    /// With max_attempts > 1, f is called again (as the same object) on a
    /// retry. Thread-safe.
    template <class F>
        requires PoolCallable<F>
    auto submit(F&& f, SubmitOptions options = {}) {
        return *submit_impl(std::forward<F>(f), options, true);
    }

    /// As submit(), but where submit() would throw QueueFull it returns an
    /// empty optional instead (f is then destroyed unrun). Thread-safe.
    template <class F>
        requires PoolCallable<F>
    auto try_submit(F&& f, SubmitOptions options = {}) {
        return submit_impl(std::forward<F>(f), options, false);
    }

    /// Queues f without a handle; a failure (throw, timeout) goes to
    /// PoolOptions::on_error and stats(). Throws as submit(). Thread-safe.
    template <class F>
        requires PoolCallable<F>
    void post(F&& f, SubmitOptions options = {}) {
        (void)post_impl(std::forward<F>(f), options, true);
    }

    /// As post(), but returns false where post() would throw QueueFull.
    /// Thread-safe.
    template <class F>
        requires PoolCallable<F>
    bool try_post(F&& f, SubmitOptions options = {}) {
        return post_impl(std::forward<F>(f), options, false);
    }

    void wait_idle() { core_->wait_idle(); }
    template <class Rep, class Period>
    bool wait_idle_for(std::chrono::duration<Rep, Period> timeout) {
        return core_->wait_idle_until(detail::deadline_after(timeout));
    }
    /// As WorkerPool::pause()/resume()/paused().
    void pause() noexcept { core_->pause(); }
    void resume() noexcept { core_->resume(); }
    bool paused() const noexcept { return core_->paused(); }
    void shutdown() { core_->shutdown(); }
    /// As WorkerPool::shutdown(drain_timeout); returns how many queued
    /// callables were cancelled when the time ran out.
    template <class Rep, class Period>
    std::size_t shutdown(std::chrono::duration<Rep, Period> drain_timeout) {
        return core_->shutdown_until(detail::deadline_after(drain_timeout), nullptr);
    }
    /// As WorkerPool::shutdown_now(): queued callables resolve TaskCancelled
    /// without running; returns how many there were.
    std::size_t shutdown_now() { return core_->shutdown_now(nullptr); }
    PoolStats stats() const { return core_->stats(); }
    /// As WorkerPool::options().
    const PoolOptions& options() const noexcept { return core_->options(); }
    std::size_t size() const noexcept { return core_->size(); }
    /// As WorkerPool::resize().
    void resize(std::size_t n) { core_->resize(n); }

private:
    template <class F>
    auto submit_impl(F&& f, const SubmitOptions& options, bool throw_if_full) {
        Core::check(options);
        using Fn = std::decay_t<F>;
        using R = detail::callable_result_t<Fn>;
        static_assert(!std::is_reference_v<R>,
                      "taskdist::ThreadPool::submit: the callable returns a reference, which would dangle once "
                      "the task ends; return a value, a pointer or a std::reference_wrapper instead");
        detail::Thunk thunk([fn = Fn(std::forward<F>(f))](TaskContext& ctx, detail::TaskStateBase* base) mutable {
            auto* s = static_cast<detail::TaskState<R>*>(base);
            if constexpr (std::is_void_v<R>) {
                detail::call_with_context(fn, ctx);
                if (detail::ContextAccess::commit(ctx)) s->store_value();
            } else {
                R r = detail::call_with_context(fn, ctx);
                if (detail::ContextAccess::commit(ctx)) s->store_value(std::move(r));
            }
        });
        // From one of our own workers the callable goes in the state, where a
        // nested wait can reach it (see WorkerPool::submit()).
        detail::TaskState<R>* state = core_->on_own_worker()
                                          ? new detail::BoxedState<detail::Thunk, R>(std::move(thunk))
                                          : new detail::TaskState<R>();
        std::optional<TaskHandle<R>> handle(detail::make_handle(state));
        // NOLINTNEXTLINE(bugprone-use-after-move): when the state took the callable, the queue gets the empty Thunk
        if (core_->push(Item{std::move(thunk), detail::StateRef<detail::TaskStateBase>(state), 0},
                        options, throw_if_full) == Core::Pushed::refused) {
            handle.reset();
        }
        return handle;
    }

    template <class F>
    bool post_impl(F&& f, const SubmitOptions& options, bool throw_if_full) {
        Core::check(options);
        detail::Thunk thunk([fn = std::decay_t<F>(std::forward<F>(f))](TaskContext& ctx,
                                                                        detail::TaskStateBase*) mutable {
            (void)detail::call_with_context(fn, ctx);
        });
        detail::StateRef<detail::TaskStateBase> state;
        if (core_->needs_state(options)) state = detail::StateRef<detail::TaskStateBase>(new detail::TaskState<void>(1, true));
        return core_->push(Item{std::move(thunk), std::move(state), 0}, options, throw_if_full) !=
               Core::Pushed::refused;
    }

    std::shared_ptr<Core> core_;
};

/// The pool most code wants: callables over a shared lock-free queue.
using ThreadPool = BasicThreadPool<>;

} // namespace taskdist
