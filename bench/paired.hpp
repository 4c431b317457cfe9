// Paired ratios. The targets that compare two taskdist set-ups (statistics
// on and off; a distributor against SharedQueue; 4 workers against 2) are
// measured in pairs: every repetition runs both, on pools built before the
// loop, in the order A B B A, so that both sides of the ratio see the same
// spell of this machine. As separate benchmarks their medians could come
// from different spells: this VM's time per W2 task jumps between two
// levels about 2x apart for seconds at a time, and the unpaired stats-cost
// ratio read 0.98-1.45 across runs.
#pragma once

#include "common.hpp"

namespace bench {

/// Runs pass a() and pass b() (each returns its seconds) as A B B A per
/// iteration and reports ratio = A's time over B's, and each side's time per
/// task (n tasks a pass).
template <class PassA, class PassB>
void paired(benchmark::State& state, std::size_t n, PassA&& a, PassB&& b) {
    // One untimed pass each first: A B B A puts the fresh pools' one-off
    // costs (a queue's first growth; task-state blocks the process's cache
    // had returned to the system, whose page faults cost W1 ten times a
    // warm pass) on A alone, and W1's 4-against-2 read 0.68.
    a();
    b();
    double ta = 0, tb = 0;
    for (auto _ : state) {
        ta += a();
        tb += b();
        tb += b();
        ta += a();
    }
    const double tasks = 2.0 * static_cast<double>(n) * static_cast<double>(state.iterations());
    state.counters["ratio"] = ta / tb;
    state.counters["a_ns_per_task"] = ta * 1e9 / tasks;
    state.counters["b_ns_per_task"] = tb * 1e9 / tasks;
}

} // namespace bench
