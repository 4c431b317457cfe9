// What every workload file of the benchmark suite shares: the task-count
// scale, the timers, the results a benchmark reports, and the arguments it
// runs with. Not thread-safe unless a function says so.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <thread>

namespace bench {

using Clock = std::chrono::steady_clock;

/// TASKDIST_BENCH_SCALE (default 1) scales the task counts: CI runs a smoke
/// pass with a small scale so the suite cannot rot.
inline double scale() {
    static const double s = [] {
        const char* e = std::getenv("TASKDIST_BENCH_SCALE");
        const double v = e ? std::atof(e) : 1.0;
        return v > 0 ? v : 1.0;
    }();
    return s;
}

inline std::size_t scaled(std::size_t n) {
    return std::max<std::size_t>(10, static_cast<std::size_t>(static_cast<double>(n) * scale()));
}

inline std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

inline long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/// What W2 and W5's tasks increment: alone on its cache line. Every task
/// writes it, from whichever worker runs it; a pool object on the stack
/// beside it, which the producer reads on every post, shared its line in
/// some processes and not in others (the stack's placement is random per
/// process), and that pool's W2 then ran 1.2-1.4x slower. Two identical
/// taskdist pools paired read 1.18-1.31 in half of 16 processes that way.
/// Thread-safe.
struct alignas(64) TaskCounter {
    void add() noexcept { n.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return n.load(std::memory_order_relaxed); }
    std::atomic<std::uint64_t> n{0};
};
static_assert(sizeof(TaskCounter) == 64);

/// Results are read the same way from every handle-like type.
template <class H>
auto take(H& h) {
    return h.get();
}

/// Wall time since it was made: of a measured loop, or of one pass.
class LoopTimer {
public:
    double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

private:
    Clock::time_point start_ = Clock::now();
};

inline void per_task(benchmark::State& state, std::size_t tasks, const LoopTimer& timer) {
    const double total = static_cast<double>(tasks) * static_cast<double>(state.iterations());
    state.SetItemsProcessed(static_cast<std::int64_t>(total));
    state.counters["ns_per_task"] = timer.seconds() * 1e9 / total;
}

/// Spins on the clock until `until`; returns the first reading at or past
/// it (later than `until` by however long this thread was off its core).
/// W4's tasks and machine/alone's spins both run this. Thread-safe.
inline Clock::time_point spin_until(Clock::time_point until) {
    auto now = Clock::now();
    while (now < until) now = Clock::now();
    return now;
}

/// The wall time of the measurements that watch the machine for a while
/// (idle_cpu, machine): 1 s, shorter in a scaled-down smoke pass.
inline double watch_seconds() { return std::min(1.0, std::max(0.05, scale())); }

/// W1-W5 run at 1, 2 and 4 workers.
inline void workers_args(benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(2)->Arg(4)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
}

/// The pairs' ratios are the targets' closest calls (4 against 2 workers
/// near 0.9) and swing with what ran just before them: scripts/bench.sh gives
/// them three times the repetitions through this variable (each is cheap).
inline void pair_args(benchmark::internal::Benchmark* b) {
    b->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
    if (const char* reps = std::getenv("TASKDIST_BENCH_PAIR_REPETITIONS")) {
        const int n = std::atoi(reps);
        if (n > 0) b->Repetitions(n);
    }
}

} // namespace bench
