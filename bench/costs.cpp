// What is not a workload: the cost of a stats() snapshot, an idle pool's
// CPU use over a second, and machine/alone, how much of a core one lone
// thread gets on this machine (the floor under W3 and W4).
#include "common.hpp"

#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <ctime>
#include <thread>
#include <vector>

namespace {

using namespace bench;

void stats_snapshot(benchmark::State& state) {
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = static_cast<std::size_t>(state.range(0))});
    for (int i = 0; i < 1000; ++i) pool.post(i);
    pool.wait_idle();
    for (auto _ : state) benchmark::DoNotOptimize(pool.stats());
}

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void idle_cpu(benchmark::State& state) {
    const double wall = watch_seconds();
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = static_cast<std::size_t>(state.range(0))});
    pool.submit(1).get();  // the workers are up and have gone to sleep
    double share = 0;
    for (auto _ : state) {
        const double c0 = process_cpu_seconds();
        std::this_thread::sleep_for(std::chrono::duration<double>(wall));  // measuring idleness: nothing to wait for
        share = (process_cpu_seconds() - c0) / wall;
    }
    state.counters["cpu_share_of_one_core"] = share;
}

// No pool: one thread reads the clock back to back and counts the gaps over
// 2 us, the time it was off its core (this VM's host runs other work on it:
// steal that /proc/stat does not show). Then the mean length of W4's 20 us
// spin, alone: a gap that straddles a spin's end lengthens it, and no
// scheduler can win that back, so it is the floor under W4's makespan/ideal.
void machine(benchmark::State& state) {
    const auto wall = std::chrono::duration<double>(watch_seconds());
    double off_share = 0, gaps_per_s = 0, median_gap_us = 0, spin_ratio = 0;
    for (auto _ : state) {
        std::vector<double> gaps;
        const auto t0 = Clock::now();
        const auto end = t0 + std::chrono::duration_cast<Clock::duration>(wall);
        for (auto prev = t0, now = t0; now < end; prev = now) {
            now = Clock::now();
            if (now - prev > std::chrono::microseconds(2)) gaps.push_back(std::chrono::duration<double>(now - prev).count());
        }
        double off = 0;
        for (const double g : gaps) off += g;
        std::sort(gaps.begin(), gaps.end());
        off_share = off / wall.count();
        gaps_per_s = static_cast<double>(gaps.size()) / wall.count();
        median_gap_us = gaps.empty() ? 0.0 : gaps[gaps.size() / 2] * 1e6;

        const std::size_t spins = scaled(10'000);
        double spun = 0;
        for (std::size_t i = 0; i < spins; ++i) {
            const auto start = Clock::now();
            spun += std::chrono::duration<double>(spin_until(start + std::chrono::microseconds(20)) - start).count();
        }
        spin_ratio = spun / (static_cast<double>(spins) * 20e-6);
    }
    state.counters["off_cpu_share"] = off_share;
    state.counters["gaps_per_second"] = gaps_per_s;
    state.counters["median_gap_us"] = median_gap_us;
    state.counters["spin20_over_nominal"] = spin_ratio;
}

} // namespace

BENCHMARK(stats_snapshot)->Name("stats_snapshot/taskdist")->Arg(2)->Arg(4)->Unit(benchmark::kMicrosecond);
BENCHMARK(machine)->Name("machine/alone")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(idle_cpu)->Name("idle_cpu/taskdist")->Arg(2)->Arg(4)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
