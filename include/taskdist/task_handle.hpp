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

#include "detail/park.hpp"
#include "errors.hpp"

namespace taskdist {

template <class R>
class TaskHandle;

namespace detail {

// The state one task shares between its handle and the pool: one heap block
// per submit(), nothing per post().
//
// Everything that changes hands is packed in one 32-bit word so that a
// resolution is a single atomic step and a waiter can futex-wait on it:
//   claimed     somebody owns the right to resolve (first resolver wins; later
//               issues add timeouts and cancellation racing the worker)
//   done        the outcome is written and visible (release/acquire)
//   error       the outcome is the exception in error_, not a value
//   waiter      a thread sleeps on the word; the resolver must wake it
//   handle_ref  the TaskHandle still exists
//   worker_ref  the pool still holds the task
// The block is freed by whichever side drops the last reference. The
// resolver wakes waiters before dropping its reference, so a wake never
// touches freed memory.
class TaskStateBase {
public:
    static constexpr std::uint32_t claimed = 1u << 0;
    static constexpr std::uint32_t done = 1u << 1;
    static constexpr std::uint32_t error = 1u << 2;
    static constexpr std::uint32_t waiter = 1u << 3;
    static constexpr std::uint32_t handle_ref = 1u << 4;
    static constexpr std::uint32_t worker_ref = 1u << 5;

    TaskStateBase(const TaskStateBase&) = delete;
    TaskStateBase& operator=(const TaskStateBase&) = delete;

    /// Takes the exclusive right to resolve. False if another resolver won.
    bool try_claim() noexcept {
        return (word_.fetch_or(claimed, std::memory_order_acquire) & claimed) == 0;
    }

    /// After a successful try_claim(): record an exception as the outcome.
    void store_error(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        has_error_ = true;
    }

    /// Claims and stores an error in one call; false if already claimed.
    bool try_fail(std::exception_ptr e) noexcept {
        if (!try_claim()) return false;
        store_error(std::move(e));
        return true;
    }

    /// After the outcome is stored: make it visible, wake a waiter, and drop
    /// the pool's reference (which may free the block).
    void publish_and_release() noexcept {
        const std::uint32_t outcome = done | (has_error_ ? error : 0u);
        std::uint32_t w = word_.load(std::memory_order_relaxed);
        // Common case: nobody waits, so publishing and dropping our
        // reference is one CAS.
        while ((w & waiter) == 0) {
            if (word_.compare_exchange_weak(w, (w | outcome) & ~worker_ref, std::memory_order_acq_rel,
                                            std::memory_order_relaxed)) {
                if ((w & handle_ref) == 0) destroy_(this);
                return;
            }
        }
        word_.fetch_or(outcome, std::memory_order_acq_rel);
        unpark_all(word_);
        release(worker_ref);
    }

    /// The pool's reference goes away without a resolution (the task was
    /// never claimed by anyone): resolve with TaskAbandoned so no handle waits
    /// forever.
    void abandon() noexcept {
        if (try_claim()) {
            store_error(std::make_exception_ptr(TaskAbandoned{}));
            publish_and_release();
        } else {
            release(worker_ref);
        }
    }

    bool is_done() const noexcept { return (word_.load(std::memory_order_acquire) & done) != 0; }

    void wait() noexcept {
        std::uint32_t w = word_.load(std::memory_order_acquire);
        while ((w & done) == 0) {
            if ((w & waiter) == 0 &&
                !word_.compare_exchange_weak(w, w | waiter, std::memory_order_acquire)) {
                continue;
            }
            park(word_, w | waiter);
            w = word_.load(std::memory_order_acquire);
        }
    }

    bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept {
        std::uint32_t w = word_.load(std::memory_order_acquire);
        while ((w & done) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if ((w & waiter) == 0 &&
                !word_.compare_exchange_weak(w, w | waiter, std::memory_order_acquire)) {
                continue;
            }
            park_until(word_, w | waiter, deadline);
            w = word_.load(std::memory_order_acquire);
        }
        return true;
    }

    void release_handle() noexcept { release(handle_ref); }

    std::exception_ptr error_ptr() const noexcept { return error_; }
    bool has_error() const noexcept { return has_error_; }

protected:
    using Destroy = void (*)(TaskStateBase*) noexcept;
    explicit TaskStateBase(Destroy destroy) noexcept : destroy_(destroy) {}
    ~TaskStateBase() = default;

private:
    void release(std::uint32_t ref) noexcept {
        const std::uint32_t other = ref == handle_ref ? worker_ref : handle_ref;
        if ((word_.fetch_and(~ref, std::memory_order_acq_rel) & other) == 0) destroy_(this);
    }

    std::atomic<std::uint32_t> word_{handle_ref | worker_ref};
    bool has_error_ = false;  // written by the claimer before `done` is published
    Destroy destroy_;
    std::exception_ptr error_;
};

template <class R>
class TaskState final : public TaskStateBase {
public:
    TaskState() noexcept : TaskStateBase(&destroy) {}

    /// After a successful try_claim(): construct the value.
    template <class... Args>
    void store_value(Args&&... args) {
        if constexpr (!std::is_void_v<R>) {
            ::new (static_cast<void*>(&storage_)) R(std::forward<Args>(args)...);
            has_value_ = true;
        }
    }

    /// Called once, by the handle, after done was observed.
    R take() {
        if (has_error()) std::rethrow_exception(error_ptr());
        if constexpr (!std::is_void_v<R>) {
            R* p = std::launder(reinterpret_cast<R*>(&storage_));
            return std::move(*p);
        }
    }

private:
    static void destroy(TaskStateBase* base) noexcept { delete static_cast<TaskState*>(base); }

    ~TaskState() {
        if constexpr (!std::is_void_v<R>) {
            if (has_value_) std::launder(reinterpret_cast<R*>(&storage_))->~R();
        }
    }
    struct Empty {};
    struct alignas(std::conditional_t<std::is_void_v<R>, char, R>) Bytes {
        unsigned char data[sizeof(std::conditional_t<std::is_void_v<R>, char, R>)];
    };
    using Storage = std::conditional_t<std::is_void_v<R>, Empty, Bytes>;
    [[no_unique_address]] Storage storage_;
    bool has_value_ = false;
};

/// The pool's owning reference to a task state. Dropping it without a
/// resolution resolves the handle with TaskAbandoned, so an exception thrown
/// between submit and run can never leave a handle waiting forever.
template <class S>
class StateRef {
public:
    StateRef() noexcept = default;
    explicit StateRef(S* s) noexcept : s_(s) {}
    StateRef(StateRef&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    StateRef& operator=(StateRef&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ~StateRef() { reset(); }

    S* get() const noexcept { return s_; }
    S* operator->() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Publishes the stored outcome and gives up the reference.
    void publish() noexcept { std::exchange(s_, nullptr)->publish_and_release(); }

    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->abandon();
    }

private:
    S* s_ = nullptr;
};

template <class R>
TaskHandle<R> make_handle(TaskState<R>* s) noexcept;

} // namespace detail

/// The caller's side of one submitted task: wait for it and take its result.
///
/// Move-only. One handle is used by one thread at a time (like
/// std::future); different handles are independent. get() may be called
/// once: it returns the value or rethrows what the task threw. Destroying a
/// handle whose task has not finished neither blocks nor cancels it.
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
        return wait_until(std::chrono::steady_clock::now() +
                          std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
    }

    /// Blocks until the task resolves or `deadline` passes; true if resolved.
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
        auto& s = state("wait_until");
        if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
            return s.wait_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline));
        } else {
            return s.wait_until(std::chrono::steady_clock::now() +
                                std::chrono::ceil<std::chrono::steady_clock::duration>(deadline - Clock::now()));
        }
    }

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
        if (s_) std::exchange(s_, nullptr)->release_handle();
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
