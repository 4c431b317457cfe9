// W4: 20,000 tasks, 99% spinning 20 us and 1% spinning 2 ms, all submitted
// at once: makespan against the ideal, and p50/p99 submit-to-finish latency;
// at 1, 2 and 4 workers, bare threads the floor.
#include "common.hpp"
#include "run_all.hpp"

#include <algorithm>
#include <vector>

namespace {

using namespace bench;

/// Each task's latency runs from the moment it was posted (on bare threads:
/// from the start). makespan_over_ideal divides by the nominal durations;
/// makespan_over_work by the time the tasks actually spun (a task preempted
/// past its end, by this VM's host, spins longer), which leaves the pool's
/// own losses: idle workers and its overhead. Only with no more workers than
/// cores: beyond that, preempted spins count time no core spent.
template <class RunAll>
void w4(benchmark::State& state, std::size_t workers, RunAll run_all) {
    const std::size_t n = scaled(20'000);
    std::vector<std::int64_t> latency(n);
    std::vector<Clock::time_point> posted(n);
    std::vector<Clock::duration> spun(n);
    double makespan_sum = 0, ideal = 0, work_sum = 0;
    auto work = [](std::size_t i) { return (i % 100 == 99) ? std::chrono::microseconds(2000) : std::chrono::microseconds(20); };
    for (std::size_t i = 0; i < n; ++i) ideal += std::chrono::duration<double>(work(i)).count();
    const LoopTimer timer;
    for (auto _ : state) {
        std::fill(posted.begin(), posted.end(), Clock::time_point::min());  // min: there from the start
        const auto t0 = Clock::now();
        run_all(
            n,
            [&, work](std::size_t i) {
                const auto start = Clock::now();
                const auto now = spin_until(start + work(i));
                spun[i] = now - start;
                latency[i] = (now - (posted[i] == Clock::time_point::min() ? t0 : posted[i])).count();
            },
            [&posted](std::size_t i) { posted[i] = Clock::now(); });
        makespan_sum += std::chrono::duration<double>(Clock::now() - t0).count();
        for (const auto d : spun) work_sum += std::chrono::duration<double>(d).count();
    }
    const double makespan = makespan_sum / static_cast<double>(state.iterations());
    const auto parallel = static_cast<double>(std::min(workers, cores()));
    ideal /= parallel;
    std::sort(latency.begin(), latency.end());
    state.counters["makespan_over_ideal"] = makespan / ideal;
    if (workers <= cores()) state.counters["makespan_over_work"] = makespan_sum / (work_sum / parallel);
    state.counters["p50_us"] = static_cast<double>(latency[n / 2]) / 1e3;
    state.counters["p99_us"] = static_cast<double>(latency[n * 99 / 100]) / 1e3;
    per_task(state, n, timer);
}

template <class B>
void W4(benchmark::State& state) {
    const auto workers = static_cast<std::size_t>(state.range(0));
    B backend(workers);
    w4(state, workers, runner(backend));
}

} // namespace

BENCHMARK(W4<TaskdistCallables<taskdist::SharedQueue>>)->Name("W4/taskdist_callables_shared")->Apply(workers_args);
BENCHMARK(W4<TaskdistCallables<taskdist::LeastBusy>>)->Name("W4/taskdist_callables_leastbusy")->Apply(workers_args);
BENCHMARK(W4<MutexPool>)->Name("W4/mutex_pool")->Apply(workers_args);
BENCHMARK(W4<BareThreads>)->Name("W4/bare_threads")->Apply(workers_args);
#ifdef TASKDIST_BENCH_TBB
BENCHMARK(W4<TbbArena>)->Name("W4/tbb_arena")->Apply(workers_args);
#endif
#ifdef TASKDIST_BENCH_ASIO
BENCHMARK(W4<AsioPool>)->Name("W4/asio_thread_pool")->Apply(workers_args);
#endif
