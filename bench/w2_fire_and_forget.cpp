// W2: 1,000,000 fire-and-forget tasks from one thread (a relaxed atomic
// increment each), then wait for idle; at 1, 2 and 4 workers. Plus the W2
// pairs: statistics on against off, each distributor against SharedQueue,
// and 4 workers against 2.
#include "backends.hpp"
#include "common.hpp"
#include "fire_and_forget.hpp"
#include "paired.hpp"

namespace {

using namespace bench;

template <class B>
void W2(benchmark::State& state) {
    fire_and_forget<B>(state, 1);
}

/// taskdist's handler pool, fire and forget: post(int), handler counts.
/// Timed = false turns the latency statistics off.
template <class Dist, bool Timed = true>
void W2_handler(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    TaskCounter count;
    taskdist::WorkerPool<int, void, Dist> pool([&count](int) { count.add(); },
                                               {.workers = static_cast<std::size_t>(state.range(0)), .measure_timing = Timed});
    const LoopTimer timer;
    for (auto _ : state) {
        for (std::size_t i = 0; i < n; ++i) pool.post(static_cast<int>(i));
        pool.wait_idle();
    }
    per_task(state, n, timer);
}

/// Seconds for one W2 pass (n posts, then idle) through `post`.
template <class Post, class Pool>
double w2_pass(Pool& pool, std::size_t n, Post&& post) {
    const LoopTimer timer;
    for (std::size_t i = 0; i < n; ++i) post(pool, i);
    pool.wait_idle();
    return timer.seconds();
}

/// A: the handler pool with statistics (the default); B: without.
void W2pair_stats_cost(benchmark::State& state) {
    const std::size_t n = scaled(1'000'000);
    const auto workers = static_cast<std::size_t>(state.range(0));
    TaskCounter count;
    auto handler = [&count](int) { count.add(); };
    using Pool = taskdist::WorkerPool<int, void, taskdist::SharedQueue>;
    Pool timed(handler, {.workers = workers, .measure_timing = true});
    Pool untimed(handler, {.workers = workers, .measure_timing = false});
    auto post = [](Pool& p, std::size_t i) { p.post(static_cast<int>(i)); };
    paired(state, n, [&] { return w2_pass(timed, n, post); }, [&] { return w2_pass(untimed, n, post); });
}

/// W2 of callables (a relaxed increment each) on pool a against pool b.
template <class A, class B>
void w2pair_callables(benchmark::State& state, A& a, B& b) {
    const std::size_t n = scaled(1'000'000);
    TaskCounter count;
    auto post = [&count](auto& p, std::size_t) { p.post([&count] { count.add(); }); };
    paired(state, n, [&] { return w2_pass(a, n, post); }, [&] { return w2_pass(b, n, post); });
}

/// A: callables under Dist; B: the same under SharedQueue.
template <class Dist>
void W2pair_distributor(benchmark::State& state) {
    const auto workers = static_cast<std::size_t>(state.range(0));
    TaskdistCallables<Dist> pool(workers);
    TaskdistCallables<taskdist::SharedQueue> shared(workers);
    w2pair_callables(state, pool, shared);
}

/// A: 4 workers; B: 2.
void W2pair_shared_4_vs_2(benchmark::State& state) {
    TaskdistCallables<taskdist::SharedQueue> four(4);
    TaskdistCallables<taskdist::SharedQueue> two(2);
    w2pair_callables(state, four, two);
}

} // namespace

// Names: <workload>/<backend>/<workers>.
BENCHMARK(W2_handler<taskdist::SharedQueue>)->Name("W2/taskdist_handler_shared")->Apply(workers_args);
BENCHMARK(W2_handler<taskdist::SharedQueue, false>)->Name("W2/taskdist_handler_shared_untimed")->Apply(workers_args);
BENCHMARK(W2<TaskdistCallables<taskdist::SharedQueue>>)->Name("W2/taskdist_callables_shared")->Apply(workers_args);
BENCHMARK(W2<TaskdistCallables<taskdist::RoundRobin>>)->Name("W2/taskdist_callables_roundrobin")->Apply(workers_args);
BENCHMARK(W2<TaskdistCallables<taskdist::LeastBusy>>)->Name("W2/taskdist_callables_leastbusy")->Apply(workers_args);
BENCHMARK(W2<TaskdistCallables<taskdist::Priority>>)->Name("W2/taskdist_callables_priority")->Apply(workers_args);
BENCHMARK(W2<TaskdistCallables<taskdist::Sticky>>)->Name("W2/taskdist_callables_sticky")->Apply(workers_args);
BENCHMARK(W2<MutexPool>)->Name("W2/mutex_pool")->Apply(workers_args);
#ifdef TASKDIST_BENCH_TBB
BENCHMARK(W2<TbbTaskGroup>)->Name("W2/tbb_task_group")->Apply(workers_args);
BENCHMARK(W2<TbbArena>)->Name("W2/tbb_arena")->Apply(workers_args);
#endif
#ifdef TASKDIST_BENCH_ASIO
BENCHMARK(W2<AsioPool>)->Name("W2/asio_thread_pool")->Apply(workers_args);
#endif

// The targets' pairs, at 2 workers (the figures are for 2).
BENCHMARK(W2pair_shared_4_vs_2)->Name("W2pair/shared_4_vs_2")->Apply(pair_args);
BENCHMARK(W2pair_stats_cost)->Name("W2pair/stats_cost")->Apply(pair_args);
BENCHMARK(W2pair_distributor<taskdist::RoundRobin>)->Name("W2pair/roundrobin_vs_shared")->Apply(pair_args);
BENCHMARK(W2pair_distributor<taskdist::LeastBusy>)->Name("W2pair/leastbusy_vs_shared")->Apply(pair_args);
BENCHMARK(W2pair_distributor<taskdist::Priority>)->Name("W2pair/priority_vs_shared")->Apply(pair_args);
BENCHMARK(W2pair_distributor<taskdist::Sticky>)->Name("W2pair/sticky_vs_shared")->Apply(pair_args);
