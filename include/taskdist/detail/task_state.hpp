// taskdist: the state one task shares between its handle, the pool and the
// pool's supervisor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "../distributor.hpp"
#include "../errors.hpp"
#include "block_cache.hpp"
#include "park.hpp"
#include "platform.hpp"

namespace taskdist::detail {

class TaskStateBase;
class PoolLink;

/// steady_clock time as the pool stores it (nanoseconds since its epoch), and back.
inline std::int64_t to_ns(std::chrono::steady_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline std::chrono::steady_clock::time_point to_time_point(std::int64_t ns) noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

/// The pool whose worker this thread is, if any (see PoolLink::run_inline).
inline thread_local PoolLink* current_worker_link = nullptr;

/// What a task state needs of the pool that owns it, so that
/// TaskHandle::cancel() can reach the pool. The pool outlives every
/// unresolved task it accepted, and cancel() only calls in while it holds the
/// task unresolved (claimed, not yet published), so the pointer is safe.
class PoolLink {
public:
    /// The task was just claimed for cancellation, with its lock held.
    /// `site` is the worker running it (PoolCore's Runner), or null if it
    /// was still queued. The pool counts it, and stops the worker if any.
    virtual void on_cancel(TaskStateBase& task, void* site) noexcept = 0;
    /// Keeps the pool alive across a cancel: once the cancel is counted the
    /// pool may be balanced and, without this, destroyed under our feet.
    virtual std::shared_ptr<void> keep_alive() noexcept = 0;
    /// After the cancel is published: wake whoever waits for the pool to be idle.
    virtual void after_resolution() noexcept = 0;
    /// Called by a thread of this pool's about to wait for `task`, which has
    /// a payload box: if the task has not started, claim it and run it here,
    /// now, so that a task waiting for another can never starve the pool.
    virtual void run_inline(TaskStateBase& task) noexcept = 0;

protected:
    ~PoolLink() = default;
};

/// One heap block per submit() (and per post() that uses per-task options).
///
/// One 32-bit word carries everything that changes hands, so that each
/// transition is a single atomic step and a waiter can futex-wait on it:
///   claimed   somebody owns the right to resolve (first resolver wins)
///   done      the outcome is written and visible (release/acquire)
///   error     the outcome is the exception in error_, not a value
///   waiter    a thread sleeps on the word; the publisher must wake it
///   started   a worker runs the current attempt; site_ names it
///   locked    a short critical section in which claimed/started/site_
///             change together: a canceller, the supervisor and the
///             running worker decide who resolves without a race
///   detached  no handle was ever given out (a post()): failures go to
///             PoolOptions::on_error instead
///   refs      the high 24 bits: owners (handle, queue entry, timers, ...)
/// Whoever drops the last reference frees the block. The publisher wakes
/// waiters before dropping its own reference, so a wake never touches freed
/// memory.
class TaskStateBase {
public:
    static constexpr std::uint32_t claimed = 1u << 0;
    static constexpr std::uint32_t done = 1u << 1;
    static constexpr std::uint32_t error = 1u << 2;
    static constexpr std::uint32_t waiter = 1u << 3;
    static constexpr std::uint32_t started = 1u << 4;
    static constexpr std::uint32_t locked = 1u << 5;
    static constexpr std::uint32_t detached = 1u << 6;
    static constexpr std::uint32_t ref_one = 1u << 8;
    static constexpr std::uint32_t ref_mask = ~(ref_one - 1);

    // Recycled (block_cache.hpp): through malloc, a block per submit was
    // most of W1's cost and all of its spread. Only the sized delete: the
    // cache needs the size, and at class scope an unsized one would win.
    // Over-aligned states go to the global aligned forms.
    static void* operator new(std::size_t n) { return BlockCache::alloc(n); }  // NOLINT(misc-new-delete-overloads)
    static void operator delete(void* p, std::size_t n) noexcept { BlockCache::free(p, n); }
    static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }  // NOLINT(misc-new-delete-overloads)
    static void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { ::operator delete(p, a); }

    TaskStateBase(const TaskStateBase&) = delete;
    TaskStateBase& operator=(const TaskStateBase&) = delete;

    // ---- references ------------------------------------------------------

    void add_ref() noexcept { word_.fetch_add(ref_one, std::memory_order_relaxed); }
    void release() noexcept {
        if (((word_.fetch_sub(ref_one, std::memory_order_acq_rel) - ref_one) & ref_mask) == 0) destroy_(this);
    }

    // ---- the lock ----------------------------------------------------------

    /// Spins until it holds the lock; returns the word as it was just before.
    /// Critical sections are a few instructions (and a stop request), so a
    /// spin is cheaper than parking.
    std::uint32_t lock() noexcept {
        std::uint32_t w = word_.load(std::memory_order_relaxed);
        for (;;) {
            if (w & locked) {
                cpu_relax();
                w = word_.load(std::memory_order_relaxed);
            } else if (word_.compare_exchange_weak(w, w | locked, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
                return w;
            }
        }
    }
    /// As lock(), but gives up (without locking) once the task is claimed.
    /// The returned word has `claimed` set if it gave up.
    std::uint32_t lock_unless_claimed() noexcept {
        std::uint32_t w = word_.load(std::memory_order_acquire);
        for (;;) {
            if (w & claimed) return w;
            if (w & locked) {
                cpu_relax();
                w = word_.load(std::memory_order_acquire);
            } else if (word_.compare_exchange_weak(w, w | locked, std::memory_order_acquire,
                                                   std::memory_order_acquire)) {
                return w;
            }
        }
    }
    /// A lock-free step for the running worker's hot path: waits while the
    /// lock is held, then, unless the task is claimed, sets `set` and clears
    /// `clear` in one CAS. Returns the word before; if it has `claimed`, the
    /// word was not changed.
    std::uint32_t transition_unless_claimed(std::uint32_t set, std::uint32_t clear) noexcept {
        std::uint32_t w = word_.load(std::memory_order_acquire);
        for (;;) {
            if (w & claimed) return w;
            if (w & locked) {
                cpu_relax();
                w = word_.load(std::memory_order_acquire);
            } else if (word_.compare_exchange_weak(w, (w | set) & ~clear, std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {
                return w;
            }
        }
    }

    /// The word as it is now (for a caller about to CAS it).
    std::uint32_t load_word() const noexcept { return word_.load(std::memory_order_acquire); }
    /// One CAS attempt; `expected` is updated on failure.
    bool try_replace(std::uint32_t& expected, std::uint32_t desired) noexcept {
        return word_.compare_exchange_weak(expected, desired, std::memory_order_acq_rel, std::memory_order_acquire);
    }

    /// With the lock held: set or clear flags (claimed, started).
    void set_flags(std::uint32_t f) noexcept { word_.fetch_or(f, std::memory_order_relaxed); }
    void clear_flags(std::uint32_t f) noexcept { word_.fetch_and(~f, std::memory_order_relaxed); }
    void unlock() noexcept { word_.fetch_and(~locked, std::memory_order_release); }

    // ---- resolution ------------------------------------------------------

    /// After claiming: record an exception as the outcome.
    void store_error(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        has_error_ = true;
    }

    /// After the outcome is stored (and the lock released): make it visible
    /// and wake waiters. The caller keeps its reference.
    void publish() noexcept {
        const std::uint32_t outcome = done | (has_error_ ? error : 0u);
        if (word_.fetch_or(outcome, std::memory_order_acq_rel) & waiter) unpark_all(word_);
    }

    /// publish(), then drop the caller's reference; one CAS when nobody waits.
    void publish_and_release() noexcept {
        const std::uint32_t outcome = done | (has_error_ ? error : 0u);
        std::uint32_t w = word_.load(std::memory_order_relaxed);
        while ((w & waiter) == 0) {
            if (word_.compare_exchange_weak(w, (w | outcome) - ref_one, std::memory_order_acq_rel,
                                            std::memory_order_relaxed)) {
                if (((w - ref_one) & ref_mask) == 0) destroy_(this);
                return;
            }
        }
        publish();
        release();
    }

    /// Claims (if still unclaimed) and resolves with `e`, without a lock
    /// holder's help. False if somebody else claimed first.
    bool try_resolve_error(std::exception_ptr e) noexcept {
        const std::uint32_t w = lock_unless_claimed();
        if (w & claimed) return false;
        set_flags(claimed);
        store_error(std::move(e));
        unlock();
        publish();
        return true;
    }

    /// The queue entry's reference goes away without the task having run:
    /// resolve with TaskAbandoned so no handle waits forever.
    void abandon() noexcept {
        try_resolve_error(std::make_exception_ptr(TaskAbandoned{}));
        release();
    }

    /// Cancels the task unless it already resolved; true if this call did.
    bool cancel() noexcept {
        const std::uint32_t w = lock_unless_claimed();
        if (w & claimed) return false;
        set_flags(claimed);
        PoolLink* pool = pool_;
        const std::shared_ptr<void> keep = pool->keep_alive();
        pool->on_cancel(*this, (w & started) ? site_ : nullptr);
        store_error(std::make_exception_ptr(TaskCancelled{}));
        unlock();
        publish();
        pool->after_resolution();
        return true;
    }

    bool is_done() const noexcept { return (word_.load(std::memory_order_acquire) & done) != 0; }
    bool is_detached() const noexcept { return (word_.load(std::memory_order_relaxed) & detached) != 0; }

    void wait() noexcept {
        help_before_wait();
        std::uint32_t w = word_.load(std::memory_order_acquire);
        while ((w & done) == 0) {
            if ((w & waiter) == 0 && !word_.compare_exchange_weak(w, w | waiter, std::memory_order_acquire)) continue;
            park(word_, w | waiter);
            w = word_.load(std::memory_order_acquire);
        }
    }

    bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept {
        help_before_wait();
        std::uint32_t w = word_.load(std::memory_order_acquire);
        while ((w & done) == 0) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if ((w & waiter) == 0 && !word_.compare_exchange_weak(w, w | waiter, std::memory_order_acquire)) continue;
            park_until(word_, w | waiter, deadline);
            w = word_.load(std::memory_order_acquire);
        }
        return true;
    }

    std::exception_ptr error_ptr() const noexcept { return error_; }
    bool has_error() const noexcept { return has_error_; }

    // ---- what the pool keeps per task ------------------------------------
    // Written by the submitter before the task is queued, and between
    // attempts by whoever re-queues it; the queue orders those writes before
    // the next reader. site_ only under the lock.

    PoolLink* pool_ = nullptr;
    void* site_ = nullptr;
    /// The payload of a task submitted by one of its own pool's workers,
    /// kept here (an optional of the pool's payload type) rather than in the
    /// queue entry, so that a waiter on the same pool can take it and run
    /// the task inline. Emptied by whoever starts the task first.
    void* box_ = nullptr;
    std::int64_t timeout_ns_ = 0;   ///< run-time limit per attempt; 0: none
    std::int64_t deadline_ns_ = 0;  ///< absolute steady_clock limit; 0: none

    /// The task's TaskInfo. Kept packed (a TaskInfo takes 48 bytes, packed
    /// 29): every task in flight holds a state, and a queued million of them
    /// is memory the submitter faults in and the workers miss on.
    TaskInfo info() const noexcept {
        TaskInfo i;
        i.priority = priority_;
        if (has_key_) i.key = key_;
        i.submitted_at = to_time_point(submitted_ns_);
        i.attempt = attempt_;
        i.previous_worker = previous_worker();
        return i;
    }
    void set_info(const TaskInfo& i) noexcept {
        priority_ = i.priority;
        has_key_ = i.key.has_value();
        key_ = i.key.value_or(0);
        submitted_ns_ = to_ns(i.submitted_at);
        attempt_ = i.attempt;
        set_previous_worker(i.previous_worker);
    }
    unsigned attempt() const noexcept { return attempt_; }
    /// The worker the last attempt failed on, or TaskInfo::no_worker.
    std::size_t previous_worker() const noexcept {
        return previous_worker_ == no_worker32 ? TaskInfo::no_worker : previous_worker_;
    }
    /// Before a retry: the next attempt, which should avoid `failed_on`.
    void next_attempt(std::size_t failed_on) noexcept {
        attempt_ += 1;
        set_previous_worker(failed_on);
        bounced_ = false;
    }

    std::uint32_t max_attempts_ = 1;
    bool bounced_ = false;  ///< re-queued once to reach a worker other than the last one

    /// Ties the caller's stop token to cancel(); set after the task is queued.
    struct StopLinkBase {
        virtual ~StopLinkBase() = default;
    };
    void link_stop_token(std::stop_token token) {
        struct Cancel {
            TaskStateBase* s;
            void operator()() const noexcept { s->cancel(); }
        };
        struct Link final : StopLinkBase {
            Link(std::stop_token t, TaskStateBase* s) : cb(std::move(t), Cancel{s}) {}
            std::stop_callback<Cancel> cb;
        };
        stop_link_ = std::make_unique<Link>(std::move(token), this);
    }

protected:
    using Destroy = void (*)(TaskStateBase*) noexcept;
    TaskStateBase(Destroy destroy, std::uint32_t refs, bool is_detached) noexcept
        : word_(refs * ref_one | (is_detached ? detached : 0u)), destroy_(destroy) {}
    ~TaskStateBase() = default;

private:
    void help_before_wait() noexcept {
        if (box_ && pool_ && current_worker_link == pool_ && !is_done()) pool_->run_inline(*this);
    }

    static constexpr std::uint32_t no_worker32 = static_cast<std::uint32_t>(-1);
    void set_previous_worker(std::size_t w) noexcept {
        // A pool of 2^32 workers is not one to avoid a worker in.
        previous_worker_ = w < no_worker32 ? static_cast<std::uint32_t>(w) : no_worker32;
    }

    // In this order the small fields fill each other's padding (104 bytes
    // on LP64, where a TaskInfo member alone had made it 128).
    bool has_error_ = false;  // written by the claimer before `done` is published
    bool has_key_ = false;

protected:
    /// TaskState<R>'s: here, it fills a byte of padding; after the value it
    /// would cost 8 (TaskState<std::shared_ptr<T>> 128 bytes, not 120).
    bool has_value_ = false;

private:
    std::atomic<std::uint32_t> word_;
    std::uint32_t previous_worker_ = no_worker32;
    Destroy destroy_;
    std::exception_ptr error_;
    std::int64_t submitted_ns_ = 0;
    std::uint64_t key_ = 0;
    int priority_ = 0;
    unsigned attempt_ = 1;
    // Last: destroyed first, so a callback running concurrently (which then
    // finds the task claimed and returns) still sees a live word.
    std::unique_ptr<StopLinkBase> stop_link_;
};

template <class R>
class TaskState : public TaskStateBase {
public:
    /// `refs`: 2 for submit() (handle + queue entry), 1 for a detached post().
    explicit TaskState(std::uint32_t refs = 2, bool is_detached = false) noexcept
        : TaskStateBase(&destroy, refs, is_detached) {}

    /// After claiming: construct the value.
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
        }  // cppcheck-suppress missingReturn ; cppcheck 2.10 misses that a void R needs no return here
    }

protected:
    TaskState(Destroy destroy_fn, std::uint32_t refs) noexcept : TaskStateBase(destroy_fn, refs, false) {}

    ~TaskState() {
        if constexpr (!std::is_void_v<R>) {
            if (has_value_) std::launder(reinterpret_cast<R*>(&storage_))->~R();
        }
    }
private:
    static void destroy(TaskStateBase* base) noexcept { delete static_cast<TaskState*>(base); }

    struct Empty {};
    struct alignas(std::conditional_t<std::is_void_v<R>, char, R>) Bytes {
        unsigned char data[sizeof(std::conditional_t<std::is_void_v<R>, char, R>)];
    };
    using Storage = std::conditional_t<std::is_void_v<R>, Empty, Bytes>;
    [[no_unique_address]] Storage storage_;
};

/// The state of a task submitted from one of its own pool's workers: it
/// carries the payload (see TaskStateBase::box_).
template <class Payload, class R>
class BoxedState final : public TaskState<R> {
public:
    explicit BoxedState(Payload&& p) : TaskState<R>(&destroy, 2), payload_(std::move(p)) { this->box_ = &payload_; }

    /// The box of a state whose box_ was set by a BoxedState<Payload, ...>.
    static std::optional<Payload>& box(TaskStateBase& s) noexcept {
        return *static_cast<std::optional<Payload>*>(s.box_);
    }

private:
    static void destroy(TaskStateBase* base) noexcept { delete static_cast<BoxedState*>(base); }
    ~BoxedState() = default;

    std::optional<Payload> payload_;
};

/// An owning reference to a task state. The queue entry's reference
/// (`abandon_on_drop`) resolves the handle with TaskAbandoned if dropped
/// unresolved, so an exception between submit and run can never leave a
/// handle waiting forever; other owners (timers) just release.
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
    /// Gives up the reference of a task resolved by somebody else.
    void release() noexcept {
        if (s_) std::exchange(s_, nullptr)->release();
    }

    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->abandon();
    }

private:
    S* s_ = nullptr;
};

/// A plain counted reference (timers, the supervisor): dropping it never
/// resolves anything.
class StateHold {
public:
    StateHold() noexcept = default;
    explicit StateHold(TaskStateBase* s) noexcept : s_(s) {
        if (s_) s_->add_ref();
    }
    StateHold(StateHold&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    StateHold& operator=(StateHold&& o) noexcept {
        if (this != &o) {
            if (s_) s_->release();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ~StateHold() {
        if (s_) s_->release();
    }
    TaskStateBase* get() const noexcept { return s_; }
    TaskStateBase* operator->() const noexcept { return s_; }

private:
    TaskStateBase* s_ = nullptr;
};

} // namespace taskdist::detail
