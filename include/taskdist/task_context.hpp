// taskdist: what a running task may ask about itself.
#pragma once

#include <cstddef>
#include <stop_token>

namespace taskdist {

namespace detail {
struct ContextAccess;
}

/// Handed by reference to handlers that take a second parameter. Valid only
/// during that call, and only on the worker thread that made it.
class TaskContext {
public:
    TaskContext(std::size_t worker_index, unsigned attempt, const std::stop_source* stop) noexcept
        : worker_(worker_index), attempt_(attempt), stop_(stop) {}

    /// worker_index() of a task run by the submitting thread (Overflow::caller_runs).
    static constexpr std::size_t on_caller = static_cast<std::size_t>(-1);

    /// 0-based slot of the worker running the task, or on_caller.
    std::size_t worker_index() const noexcept { return worker_; }
    /// Which attempt this is, counting from 1 (see PoolOptions::max_attempts).
    unsigned attempt() const noexcept { return attempt_; }
    /// Requested when the pool wants this task to stop early: its timeout
    /// passed, or it was cancelled. Cooperative: the handler should return
    /// soon after, or its worker is declared hung after PoolOptions::hang_grace.
    /// A std::stop_callback on it runs on the thread that cancels (or on the
    /// pool's supervisor, for a timeout), while the task is held: keep it
    /// short, and never make it wait for another task of the same pool, as
    /// this worker takes no further task until it returns.
    std::stop_token stop_token() const noexcept { return stop_->get_token(); }
    bool stop_requested() const noexcept { return stop_->stop_requested(); }

private:
    friend struct detail::ContextAccess;
    using CommitFn = bool (*)(void*) noexcept;

    std::size_t worker_;
    unsigned attempt_;
    // A pointer, not a std::stop_token: copying a token is an atomic
    // reference-count round trip that most tasks would pay for nothing.
    const std::stop_source* stop_;
    // Set by the pool: decides, after the handler returned a value, whether
    // this attempt still owns the task's result (it may have timed out or
    // been cancelled meanwhile).
    CommitFn commit_ = nullptr;
    void* commit_arg_ = nullptr;
};

namespace detail {
/// The library's side door into TaskContext.
struct ContextAccess {
    static void set_commit(TaskContext& ctx, TaskContext::CommitFn fn, void* arg) noexcept {
        ctx.commit_ = fn;
        ctx.commit_arg_ = arg;
    }
    /// True if the value just computed should be stored in the task's state.
    static bool commit(TaskContext& ctx) noexcept { return ctx.commit_ ? ctx.commit_(ctx.commit_arg_) : true; }
};
} // namespace detail

} // namespace taskdist
