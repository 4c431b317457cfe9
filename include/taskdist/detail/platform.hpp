// taskdist: small platform helpers: cache-line size, a spin-wait hint, and
// naming the calling thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif

namespace taskdist::detail {

// 64 bytes covers x86-64 and most ARM cores. std::hardware_destructive_
// interference_size would do, but GCC warns that its value is ABI-unstable,
// and a header-only library must agree with itself across compilers.
inline constexpr std::size_t cache_line = 64;

/// steady_clock::now() + d, saturated: a caller who passes hours::max() means
/// "no limit", and a plain addition would overflow into the past.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point now = Clock::now();
    // Compared in floating point so that no conversion of d itself can overflow.
    if (std::chrono::duration<double>(d) >= std::chrono::duration<double>(Clock::time_point::max() - now)) {
        return Clock::time_point::max();
    }
    return now + std::chrono::ceil<Clock::duration>(d);
}

/// a + b for non-negative b, saturated at the largest value.
inline std::int64_t add_saturated(std::int64_t a, std::int64_t b) noexcept {
    constexpr std::int64_t top = std::numeric_limits<std::int64_t>::max();
    return a > top - b ? top : a + b;
}

#if defined(__SANITIZE_THREAD__)
#define TASKDIST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TASKDIST_TSAN 1
#endif
#endif

// AddressSanitizer: block_cache.hpp hands task states straight to the
// allocator under it, so that it sees every use of a freed one.
#if defined(__SANITIZE_ADDRESS__)
#define TASKDIST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TASKDIST_ASAN 1
#endif
#endif

/// A full (seq_cst) fence. ThreadSanitizer does not model standalone fences,
/// so under it the fence becomes a seq_cst read-modify-write of one shared
/// word: every fencing thread then synchronises with the previous one, which
/// is stronger than a fence and visible to the sanitizer. Production builds
/// keep the plain fence and its lack of a shared cache line.
inline void full_fence() noexcept {
#if defined(TASKDIST_TSAN)
    static std::atomic<unsigned> word{0};
    word.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

/// Asymmetric fences: a pair of threads that must each see the other's
/// store (a producer's push and a worker's "I am going to sleep") needs a
/// full fence on both sides, and the producer's runs on every task. Where
/// Linux offers membarrier(2), the rare side (the worker going to sleep)
/// pays instead: heavy_fence() makes every running thread of the process
/// execute a full barrier, so light_fence() needs only to stop the compiler.
/// Elsewhere, and under ThreadSanitizer (which models neither), both are
/// full fences.
inline bool asymmetric_fences() noexcept {
#if defined(__linux__) && defined(__NR_membarrier) && !defined(TASKDIST_TSAN)
    // Registration is once per process; every reader of `ok` is ordered
    // after it by the static's initialisation.
    static const bool ok = [] {
        const long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
        return syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    }();
    return ok;
#else
    return false;
#endif
}

/// The frequent side of an asymmetric fence (see asymmetric_fences()).
inline void light_fence() noexcept {
    if (asymmetric_fences()) {
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        full_fence();
    }
}

/// The rare side: a full barrier on every running thread of the process.
inline void heavy_fence() noexcept {
#if defined(__linux__) && defined(__NR_membarrier)
    if (asymmetric_fences() && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
#endif
    full_fence();
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// A lock for critical sections of a few dozen instructions (a queue's
/// push or pop): spins, then yields, and never sleeps in the kernel, where a
/// contended std::mutex would. Not for sections that block or run user code.
class SpinMutex {
public:
    void lock() noexcept {
        for (int spins = 0; !try_lock(); ++spins) {
            while (held_.load(std::memory_order_relaxed)) {
                if (++spins < 64) {
                    cpu_relax();
                } else {
                    // The holder may have been preempted (more threads than
                    // cores): let it run.
                    std::this_thread::yield();
                }
            }
        }
    }
    bool try_lock() noexcept { return !held_.exchange(true, std::memory_order_acquire); }
    void unlock() noexcept { held_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> held_{false};
};

/// Names the calling thread for debuggers and `top -H`. Linux caps names at
/// 15 bytes, so a long prefix is cut rather than the index.
inline void set_current_thread_name(const std::string& prefix, std::size_t index) {
#if defined(__linux__)
    // Built in a fixed buffer: GCC 12 reports a false -Wrestrict on the
    // equivalent std::string concatenation.
    char suffix[24];
    int suffix_len = std::snprintf(suffix, sizeof suffix, "-%zu", index);
    int keep = 15 - suffix_len;
    if (keep < 0) keep = 0;
    if (static_cast<std::size_t>(keep) > prefix.size()) keep = static_cast<int>(prefix.size());
    char name[16] = {};
    std::memcpy(name, prefix.data(), static_cast<std::size_t>(keep));
    std::memcpy(name + keep, suffix, static_cast<std::size_t>(std::min(suffix_len, 15 - keep)));
    pthread_setname_np(pthread_self(), name);
#else
    (void)prefix;
    (void)index;
#endif
}

} // namespace taskdist::detail
