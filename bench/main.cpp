// taskdist's benchmark suite: one file per workload (w1_handles.cpp ...
// w5_two_producers.cpp, costs.cpp), one adapter header per backend
// (backends/), all linked into one executable so that scripts/bench.sh can
// interleave every benchmark's repetitions in one random order.
//
//   W1  1,000,000 tasks returning x+1 through handles, then every result read
//   W2  1,000,000 fire-and-forget tasks (a relaxed atomic increment), then wait for idle
//   W5  W2 from two producer threads at once
//   W3  2,000 fib(24) tasks: parallel efficiency against a serial run
//   W4  20,000 tasks, 99% spinning 20 us and 1% spinning 2 ms: makespan
//       against the ideal, and p50/p99 submit-to-finish latency
//   W1pair/W2pair: the targets comparing two taskdist set-ups (statistics
//   on/off, a distributor against SharedQueue, 4 workers against 2), both
//   run in each repetition (paired.hpp); bare_threads in W3/W4: the floor.
//   costs.cpp: a stats() snapshot, an idle pool's CPU, the machine alone.
//
// W1-W5 run at 1, 2 and 4 workers; the pairs at 2 (or 4 against 2).
// TASKDIST_BENCH_SCALE (default 1) scales the task counts (common.hpp).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
