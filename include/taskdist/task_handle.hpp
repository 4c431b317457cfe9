// taskdist: TaskHandle<R>, the caller's side of one submitted task, and the
// shared state behind it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "detail/platform.hpp"
#include "detail/task_state.hpp"
#include "errors.hpp"

namespace taskdist {

template <class R>
class TaskHandle;

namespace detail {

template <class R>
TaskHandle<R> make_handle(TaskState<R>* s) noexcept;

} // namespace detail

/// The caller's side of one submitted task: wait for it and take its result.
///
/// Move-only. One handle is used by one thread at a time (like
/// std::future); different handles are independent. get() may be called
/// once: it returns the value or rethrows what the task threw. Destroying a
/// handle whose task has not finished neither blocks nor cancels it.
/// cancel() may be called from any thread, also concurrently with a wait.
template <class R>
class TaskHandle {
public:
    using result_type = R;

    /// An empty handle; valid() is false.
    TaskHandle() noexcept = default;
    TaskHandle(TaskHandle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    TaskHandle& operator=(TaskHandle&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    TaskHandle(const TaskHandle&) = delete;
    TaskHandle& operator=(const TaskHandle&) = delete;
    ~TaskHandle() { reset(); }

    /// True until get() took the result or the handle was moved from.
    bool valid() const noexcept { return s_ != nullptr; }

    /// True once the task has resolved (value or exception). Never blocks.
    /// Throws InvalidHandle on an empty handle.
    bool ready() const { return state("ready").is_done(); }

    /// Blocks until the task resolves. Throws InvalidHandle on an empty handle.
    void wait() const { state("wait").wait(); }

    /// Blocks until the task resolves or `timeout` passes; true if resolved.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        return wait_until(detail::deadline_after(timeout));
    }

    /// Blocks until the task resolves or `deadline` passes; true if resolved.
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
        auto& s = state("wait_until");
        if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
            return s.wait_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline));
        } else {
            return s.wait_until(detail::deadline_after(deadline - Clock::now()));
        }
    }

    /// Cancels the task unless it has already resolved, and says whether this
    /// call did. A queued task is then never started; a running one has its
    /// stop token requested. Either way the handle resolves with
    /// TaskCancelled at once (the handler may still be returning). Returns
    /// false, changing nothing, if the task had already resolved (with a
    /// value, an error, a timeout, or an earlier cancel). Throws InvalidHandle
    /// on an empty handle.
    bool cancel() { return state("cancel").cancel(); }

    /// Waits, then returns the value or rethrows the task's exception. The
    /// handle is empty afterwards. Throws InvalidHandle on an empty handle.
    R get() {
        auto& s = state("get");
        s.wait();
        struct Release {
            TaskHandle* h;
            ~Release() { h->reset(); }
        } release{this};
        return s.take();
    }

private:
    friend TaskHandle detail::make_handle<R>(detail::TaskState<R>*) noexcept;
    explicit TaskHandle(detail::TaskState<R>* s) noexcept : s_(s) {}

    detail::TaskState<R>& state(const char* what) const {
        if (!s_) {
            throw InvalidHandle(std::string("taskdist: TaskHandle::") + what +
                                "() on an empty handle (default-constructed, moved from, or get() already called)");
        }
        return *s_;
    }

    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->release();
    }

    detail::TaskState<R>* s_ = nullptr;
};

namespace detail {
template <class R>
TaskHandle<R> make_handle(TaskState<R>* s) noexcept {
    return TaskHandle<R>(s);
}
} // namespace detail

} // namespace taskdist
