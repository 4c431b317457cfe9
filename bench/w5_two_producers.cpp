// W5: W2 from two producer threads at once; at 1, 2 and 4 workers.
#include "backends.hpp"
#include "fire_and_forget.hpp"

namespace {

using namespace bench;

template <class B>
void W5(benchmark::State& state) {
    fire_and_forget<B>(state, 2);
}

} // namespace

BENCHMARK(W5<TaskdistCallables<taskdist::SharedQueue>>)->Name("W5/taskdist_callables_shared")->Apply(workers_args);
BENCHMARK(W5<MutexPool>)->Name("W5/mutex_pool")->Apply(workers_args);
#ifdef TASKDIST_BENCH_TBB
BENCHMARK(W5<TbbArena>)->Name("W5/tbb_arena")->Apply(workers_args);
#endif
#ifdef TASKDIST_BENCH_ASIO
BENCHMARK(W5<AsioPool>)->Name("W5/asio_thread_pool")->Apply(workers_args);
#endif
