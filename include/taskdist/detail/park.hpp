// taskdist: block a thread on a 32-bit atomic word, with an optional deadline.
//
// std::atomic<T>::wait has no timed form, and TaskHandle::wait_for needs one,
// so taskdist parks on its own: a futex on Linux, and elsewhere a small
// table of mutex + condition variable pairs keyed by the word's address.
//
// Protocol (the same for every caller): the waker changes the word first and
// calls unpark_*() after; the waiter calls park*() with the value it last
// saw and re-checks the word when park returns, because every park may wake
// spuriously. A wake can never be lost: the futex (or the bucket mutex)
// compares the word with `expected` atomically with going to sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__linux__)
#include <cerrno>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <functional>
#include <mutex>
#endif

namespace taskdist::detail {

using Word = std::atomic<std::uint32_t>;
static_assert(sizeof(Word) == sizeof(std::uint32_t) && Word::is_always_lock_free,
              "taskdist parks on 32-bit atomics that must be plain lock-free words");

#if defined(__linux__)

inline long futex_call(Word& word, int op, std::uint32_t value, const timespec* timeout) noexcept {
    // The kernel reads the word itself; a lock-free std::atomic<uint32_t> is
    // layout-compatible with a uint32_t on every platform Linux supports.
    return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, timeout, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
}

/// Sleeps while `word == expected` (or until woken spuriously).
inline void park(Word& word, std::uint32_t expected) noexcept {
    futex_call(word, FUTEX_WAIT_BITSET_PRIVATE, expected, nullptr);
}

/// As park(), but gives up at `deadline`. Returns false if the deadline passed.
inline bool park_until(Word& word, std::uint32_t expected,
                       std::chrono::steady_clock::time_point deadline) noexcept {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is the
    // clock behind std::chrono::steady_clock on Linux.
    auto since_epoch = deadline.time_since_epoch();
    if (since_epoch.count() < 0) return false;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(secs.count());
    ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count());
    long rc = futex_call(word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts);
    return !(rc == -1 && errno == ETIMEDOUT);
}

inline void unpark_one(Word& word) noexcept { futex_call(word, FUTEX_WAKE_PRIVATE, 1, nullptr); }
inline void unpark_all(Word& word) noexcept { futex_call(word, FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr); }

#else

struct ParkBucket {
    std::mutex mutex;
    std::condition_variable cv;
};

inline ParkBucket& park_bucket(const void* address) noexcept {
    static ParkBucket table[64];
    return table[std::hash<const void*>{}(address) % 64];
}

inline void park(Word& word, std::uint32_t expected) noexcept {
    ParkBucket& b = park_bucket(&word);
    std::unique_lock lock(b.mutex);
    if (word.load(std::memory_order_acquire) == expected) b.cv.wait(lock);
}

inline bool park_until(Word& word, std::uint32_t expected,
                       std::chrono::steady_clock::time_point deadline) noexcept {
    ParkBucket& b = park_bucket(&word);
    std::unique_lock lock(b.mutex);
    if (word.load(std::memory_order_acquire) != expected) return true;
    return b.cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
}

// Buckets are shared by unrelated words, so every wake is a broadcast.
inline void unpark_all(Word& word) noexcept {
    ParkBucket& b = park_bucket(&word);
    { std::lock_guard lock(b.mutex); }
    b.cv.notify_all();
}
inline void unpark_one(Word& word) noexcept { unpark_all(word); }

#endif

} // namespace taskdist::detail
