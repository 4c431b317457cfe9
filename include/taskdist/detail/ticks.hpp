// taskdist: the clocks the pool reads: Ticks for run-time statistics,
// CoarseClock for orderings that tolerate a tick (Priority's aging).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#if defined(__linux__)
#include <time.h>
#endif

#if defined(__linux__) && defined(__x86_64__)
#include <x86intrin.h>

#include <fstream>
#include <string>
#define TASKDIST_TICKS_TSC 1
#endif

namespace taskdist::detail {

/// steady_clock's reading in nanoseconds since its epoch.
inline std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// A cheap monotonic counter for timing tasks: the TSC where Linux keeps its
/// own time with it (clocksource "tsc": the kernel found it invariant and in
/// step across cores), else steady_clock's nanoseconds. On the VMs we measure
/// on, rdtsc costs 10-12 ns and clock_gettime 24-28. Ticks measure durations
/// only: anything compared with steady_clock (deadlines, a submit time an
/// observer or a distributor reads) reads that. calibrated() measures the
/// TSC against steady_clock once per process, over 0.5 ms (an error near
/// 0.01%, far below the histograms' 1/32 buckets). A value type: the pool
/// keeps a copy, so that now() inlines.
class Ticks {
public:
    /// Nanoseconds from steady_clock; what a default Ticks counts.
    Ticks() noexcept = default;

    /// The process's calibrated clock (the first call takes 0.5 ms).
    static Ticks calibrated() noexcept {
        static const Ticks c = calibrate();
        return c;
    }

    std::int64_t now() const noexcept {
#ifdef TASKDIST_TICKS_TSC
        if (tsc_) return static_cast<std::int64_t>(__rdtsc());
#endif
        return steady_ns();
    }

    /// A number of ticks, in nanoseconds (0 if negative).
    std::uint64_t to_ns(std::int64_t ticks) const noexcept {
        if (ticks <= 0) return 0;
        return tsc_ ? static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick_)
                    : static_cast<std::uint64_t>(ticks);
    }

    /// A number of nanoseconds, in ticks.
    std::int64_t from_ns(std::int64_t ns) const noexcept {
        return tsc_ ? static_cast<std::int64_t>(static_cast<double>(ns) / ns_per_tick_) : ns;
    }

    /// Whether ticks are TSC cycles (false: nanoseconds).
    bool is_tsc() const noexcept { return tsc_; }

private:
    [[gnu::cold, gnu::noinline]] static Ticks calibrate() noexcept {
        Ticks c;
#ifdef TASKDIST_TICKS_TSC
        try {
            std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
            std::string source;
            if (!(f >> source) || source != "tsc") return c;
        } catch (...) {
            return c;
        }
        const Pair a = pair();
        Pair b = a;
        while (b.ns - a.ns < 500'000) b = pair();
        if (b.tsc <= a.tsc) return c;
        c.ns_per_tick_ = static_cast<double>(b.ns - a.ns) / static_cast<double>(b.tsc - a.tsc);
        c.tsc_ = true;
#endif
        return c;
    }

#ifdef TASKDIST_TICKS_TSC
    struct Pair {
        std::int64_t ns;
        std::uint64_t tsc;
    };
    /// A steady_clock reading and the TSC at the same moment: the TSC read
    /// on both sides, keeping the tightest of a few tries, so that a thread
    /// preempted mid-read does not skew the calibration.
    static Pair pair() noexcept {
        Pair best{0, 0};
        std::uint64_t width = ~std::uint64_t{0};
        for (int i = 0; i < 8; ++i) {
            const std::uint64_t before = __rdtsc();
            const std::int64_t ns = steady_ns();
            const std::uint64_t after = __rdtsc();
            if (after >= before && after - before < width) {
                width = after - before;
                best = Pair{ns, before + (after - before) / 2};
            }
        }
        return best;
    }
#endif

    bool tsc_ = false;
    double ns_per_tick_ = 1.0;
};

/// A clock for orderings that tolerate an error of a few milliseconds, read
/// in a few nanoseconds wherever it runs: CLOCK_MONOTONIC_COARSE on Linux
/// (steady_clock's time at the kernel's last tick), steady_clock elsewhere.
/// Why: where Linux keeps time with kvm-clock rather than the TSC,
/// clock_gettime orders its TSC read behind every earlier instruction, and
/// a core whose cache lines another core contends (a producer feeding
/// workers) then waits out its pending misses in it: 70-115 ns a read there
/// against 27 alone, measured on the 2-core VM. The coarse read stayed at
/// 7-15 ns. Thread-safe (stateless).
struct CoarseClock {
    /// Nanoseconds since steady_clock's epoch, lagging it by under resolution().
    static std::int64_t now() noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
        timespec ts{};
        if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) return ns(ts);
#endif
        return steady_ns();
    }

    /// The most now() may lag steady_clock, in nanoseconds (1 where now() is
    /// steady_clock); measured once per process.
    static std::int64_t resolution() noexcept {
        static const std::int64_t r = measure_resolution();
        return r;
    }

private:
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
    static std::int64_t ns(const timespec& ts) noexcept {
        return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
#endif

    static std::int64_t measure_resolution() noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
        timespec res{};
        timespec ts{};
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
            return std::max<std::int64_t>(1, ns(res));
        }
#endif
        return 1;
    }
};

} // namespace taskdist::detail
