// taskdist: the clock the pool's run-time statistics read.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__linux__) && defined(__x86_64__)
#include <x86intrin.h>

#include <fstream>
#include <string>
#define TASKDIST_TICKS_TSC 1
#endif

namespace taskdist::detail {

/// A cheap monotonic counter for timing tasks: the TSC where Linux keeps its
/// own time with it (clocksource "tsc": the kernel found it invariant and in
/// step across cores), else steady_clock's nanoseconds. A worker reads it
/// once per task; clock_gettime costs ~25 ns on a VM, rdtsc a few, which is
/// most of what timing a short task costs. Ticks measure durations only:
/// anything compared with steady_clock (deadlines, queue wait) reads that.
/// Calibrated once per process, on first use, against steady_clock over
/// 200 us (an error near 0.03%, far below the histograms' 1/32 buckets).
/// Thread-safe.
class Ticks {
public:
    static std::int64_t now() noexcept {
#ifdef TASKDIST_TICKS_TSC
        if (get().tsc) return static_cast<std::int64_t>(__rdtsc());
#endif
        return steady_ns();
    }

    /// A number of ticks, in nanoseconds.
    static std::uint64_t to_ns(std::int64_t ticks) noexcept {
        if (ticks <= 0) return 0;
        const Calibration& c = get();
        return c.tsc ? static_cast<std::uint64_t>(static_cast<double>(ticks) * c.ns_per_tick)
                     : static_cast<std::uint64_t>(ticks);
    }

    /// A number of nanoseconds, in ticks.
    static std::int64_t from_ns(std::int64_t ns) noexcept {
        const Calibration& c = get();
        return c.tsc ? static_cast<std::int64_t>(static_cast<double>(ns) / c.ns_per_tick) : ns;
    }

    /// Whether ticks are TSC cycles (false: nanoseconds).
    static bool is_tsc() noexcept { return get().tsc; }

private:
    struct Calibration {
        bool tsc = false;
        double ns_per_tick = 1.0;
    };

    static std::int64_t steady_ns() noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    static const Calibration& get() noexcept {
        static const Calibration c = calibrate();
        return c;
    }

    static Calibration calibrate() noexcept {
        Calibration c;
#ifdef TASKDIST_TICKS_TSC
        try {
            std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
            std::string source;
            if (!(f >> source) || source != "tsc") return c;
        } catch (...) {
            return c;
        }
        const std::int64_t t0 = steady_ns();
        const std::uint64_t c0 = __rdtsc();
        std::int64_t t1 = t0;
        while (t1 - t0 < 200'000) t1 = steady_ns();
        const std::uint64_t c1 = __rdtsc();
        if (c1 <= c0) return c;
        c.ns_per_tick = static_cast<double>(t1 - t0) / static_cast<double>(c1 - c0);
        c.tsc = true;
#endif
        return c;
    }
};

} // namespace taskdist::detail
