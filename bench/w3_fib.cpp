// W3: 2,000 fib(24) tasks; parallel efficiency against a serial run of the
// same work on one thread; at 1, 2 and 4 workers, bare threads the floor.
#include "common.hpp"
#include "run_all.hpp"

#include <atomic>

namespace {

using namespace bench;

/// The same work on this thread, measured next to each parallel run so that
/// both see the same machine (a noisy VM drifts between runs).
double serial_fib_seconds(std::size_t tasks) {
    const auto t0 = Clock::now();
    long sum = 0;
    for (std::size_t i = 0; i < tasks; ++i) sum += fib(24);
    benchmark::DoNotOptimize(sum);
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

template <class RunAll>
void w3(benchmark::State& state, std::size_t workers, RunAll run_all) {
    const std::size_t n = scaled(2'000);
    std::atomic<long> sum{0};
    double total = 0, serial = 0;
    for (auto _ : state) {
        // The serial run in two halves around the parallel one, so that a
        // machine speeding up or slowing down over the iteration weighs on
        // both alike (the order A B A); one run before it read 0.83-1.11
        // across repetitions in one session.
        state.PauseTiming();
        serial += serial_fib_seconds(n / 2);
        state.ResumeTiming();
        const auto t0 = Clock::now();
        run_all(n, [&sum](std::size_t) { sum.fetch_add(fib(24), std::memory_order_relaxed); }, [](std::size_t) {});
        total += std::chrono::duration<double>(Clock::now() - t0).count();
        state.PauseTiming();
        serial += serial_fib_seconds(n - n / 2);
        state.ResumeTiming();
    }
    state.counters["efficiency"] = serial / (total * static_cast<double>(std::min(workers, cores())));
    state.SetItemsProcessed(static_cast<std::int64_t>(n) * state.iterations());
}

template <class B>
void W3(benchmark::State& state) {
    const auto workers = static_cast<std::size_t>(state.range(0));
    B backend(workers);
    w3(state, workers, runner(backend));
}

// W3's ratio swings most from repetition to repetition (0.83-1.11 in one
// run): three serial/parallel rounds per repetition, summed, steady it.
void w3_args(benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(2)->Arg(4)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
}

} // namespace

BENCHMARK(W3<TaskdistCallables<taskdist::SharedQueue>>)->Name("W3/taskdist_callables_shared")->Apply(w3_args);
BENCHMARK(W3<MutexPool>)->Name("W3/mutex_pool")->Apply(w3_args);
BENCHMARK(W3<BareThreads>)->Name("W3/bare_threads")->Apply(w3_args);
#ifdef TASKDIST_BENCH_TBB
BENCHMARK(W3<TbbArena>)->Name("W3/tbb_arena")->Apply(w3_args);
#endif
#ifdef TASKDIST_BENCH_ASIO
BENCHMARK(W3<AsioPool>)->Name("W3/asio_thread_pool")->Apply(w3_args);
#endif
