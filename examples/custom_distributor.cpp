// custom_distributor: a WorkerPool driven by a user-written policy
// (PowerOfTwoChoices, in custom_distributor.hpp), printing how many tasks
// each worker completed.
//
// One task in fifty is about a thousand times as expensive as the rest, and
// all are queued at once. The policy balances what it can see at submit
// time, queue lengths, not the cost of what is queued: expect completed
// counts close to even and busy times that differ with the expensive tasks
// each worker drew. (Where cost is uneven and tasks can run anywhere, the
// work-conserving taskdist::SharedQueue is the better choice.)
#include "custom_distributor.hpp"

#include <taskdist/taskdist.hpp>

#include <cstdint>
#include <cstdio>

namespace {

// Total Collatz steps for every start in [1, limit]: CPU-bound, with a cost
// that grows with `limit`.
std::uint64_t collatz_steps(std::uint64_t limit) {
    std::uint64_t steps = 0;
    for (std::uint64_t start = 1; start <= limit; ++start) {
        for (std::uint64_t x = start; x != 1; ++steps) x = (x % 2 == 0) ? x / 2 : 3 * x + 1;
    }
    return steps;
}

} // namespace

int main() {
    constexpr int tasks = 2000;
    taskdist::WorkerPool<std::uint64_t, std::uint64_t, example::PowerOfTwoChoices> pool(collatz_steps,
                                                                                         {.workers = 4});

    for (int i = 0; i < tasks; ++i) pool.post(i % 50 == 0 ? 20'000 : 20);
    pool.wait_idle();

    const taskdist::PoolStats stats = pool.stats();
    std::printf("%d tasks on %zu workers, power of two choices\n", tasks, stats.workers);
    for (const taskdist::WorkerStats& w : stats.per_worker) {
        std::printf("  worker %zu: %5llu completed, busy %6.1f ms\n", w.index,
                    static_cast<unsigned long long>(w.completed), static_cast<double>(w.busy_time.count()) / 1e6);
    }
    return stats.completed == static_cast<std::uint64_t>(tasks) ? 0 : 1;
}
