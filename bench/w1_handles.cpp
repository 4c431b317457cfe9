// W1: 1,000,000 tasks returning x+1 through handles, then every result read;
// at 1, 2 and 4 workers. Plus the W1 pair: 4 workers against 2, the
// oversubscription target.
#include "backends.hpp"
#include "common.hpp"
#include "paired.hpp"

#include <future>
#include <vector>

namespace {

using namespace bench;

template <class B>
void W1(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    B pool(static_cast<std::size_t>(state.range(0)));
    const LoopTimer timer;
    for (auto _ : state) {
        using H = decltype(pool.submit([] { return 0L; }));
        std::vector<H> handles;
        handles.reserve(n);
        for (std::size_t i = 0; i < n; ++i) handles.push_back(pool.submit([i] { return static_cast<long>(i) + 1; }));
        long sum = 0;
        for (auto& h : handles) sum += take(h);
        benchmark::DoNotOptimize(sum);
    }
    per_task(state, n, timer);
}

/// One W1 round through the handler pool: n handles, then every result read.
template <class Pool>
long w1_handler_round(Pool& pool, std::size_t n) {
    std::vector<taskdist::TaskHandle<long>> handles;
    handles.reserve(n);
    for (std::size_t i = 0; i < n; ++i) handles.push_back(pool.submit(static_cast<long>(i)));
    long sum = 0;
    for (auto& h : handles) sum += h.get();
    return sum;
}

template <class Dist>
void W1_handler(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    HandlerPool<Dist> pool = handler_pool<Dist>(static_cast<std::size_t>(state.range(0)));
    const LoopTimer timer;
    for (auto _ : state) benchmark::DoNotOptimize(w1_handler_round(pool, n));
    per_task(state, n, timer);
}

#ifdef TASKDIST_BENCH_TBB
/// task_group has no handles: each task writes its slot; read after wait().
/// The floor for oneTBB, not the workload as specified (a value through a
/// handle per task): W1_tbb_task_group_futures is that.
void W1_tbb_task_group(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    TbbTaskGroup pool(static_cast<std::size_t>(state.range(0)));
    const LoopTimer timer;
    for (auto _ : state) {
        std::vector<long> results(n);
        pool.arena.execute([&] {
            for (std::size_t i = 0; i < n; ++i) pool.group.run([&results, i] { results[i] = static_cast<long>(i) + 1; });
            pool.group.wait();
        });
        long sum = 0;
        for (long v : results) sum += v;
        benchmark::DoNotOptimize(sum);
    }
    per_task(state, n, timer);
}

/// W1 as specified for oneTBB: each task returns its value through a handle,
/// and the standard one (std::promise, its future kept) is the handle TBB
/// users reach for. Read once the group is done, the calling thread having
/// helped run it, as above.
struct Fulfil {
    mutable std::promise<long> promise;  // TBB calls what it runs as const
    long value;
    void operator()() const { promise.set_value(value); }
};

void W1_tbb_task_group_futures(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    TbbTaskGroup pool(static_cast<std::size_t>(state.range(0)));
    const LoopTimer timer;
    for (auto _ : state) {
        std::vector<std::future<long>> handles;
        handles.reserve(n);
        pool.arena.execute([&] {
            for (std::size_t i = 0; i < n; ++i) {
                std::promise<long> p;
                handles.push_back(p.get_future());
                pool.group.run(Fulfil{std::move(p), static_cast<long>(i) + 1});
            }
            pool.group.wait();
        });
        long sum = 0;
        for (auto& h : handles) sum += h.get();
        benchmark::DoNotOptimize(sum);
    }
    per_task(state, n, timer);
}
#endif

/// A: 4 workers; B: 2 (on a 2-core machine: oversubscribed against not).
void W1pair_handler_4_vs_2(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    auto four = handler_pool<taskdist::SharedQueue>(4);
    auto two = handler_pool<taskdist::SharedQueue>(2);
    auto round = [n](auto& pool) {
        const LoopTimer timer;
        benchmark::DoNotOptimize(w1_handler_round(pool, n));
        return timer.seconds();
    };
    paired(state, n, [&] { return round(four); }, [&] { return round(two); });
}

} // namespace

// Names: <workload>/<backend>/<workers>.
BENCHMARK(W1_handler<taskdist::SharedQueue>)->Name("W1/taskdist_handler_shared")->Apply(workers_args);
BENCHMARK(W1_handler<taskdist::RoundRobin>)->Name("W1/taskdist_handler_roundrobin")->Apply(workers_args);
BENCHMARK(W1<TaskdistCallables<taskdist::SharedQueue>>)->Name("W1/taskdist_callables_shared")->Apply(workers_args);
BENCHMARK(W1<MutexPool>)->Name("W1/mutex_pool")->Apply(workers_args);
#ifdef TASKDIST_BENCH_TBB
BENCHMARK(W1_tbb_task_group)->Name("W1/tbb_task_group")->Apply(workers_args);
BENCHMARK(W1_tbb_task_group_futures)->Name("W1/tbb_task_group_futures")->Apply(workers_args);
#endif
#ifdef TASKDIST_BENCH_ASIO
BENCHMARK(W1<AsioPool>)->Name("W1/asio_thread_pool")->Apply(workers_args);
#endif

// The target's pair, at 2 workers (the figures are for 2).
BENCHMARK(W1pair_handler_4_vs_2)->Name("W1pair/handler_4_vs_2")->Apply(pair_args);
