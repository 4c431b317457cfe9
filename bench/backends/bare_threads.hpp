// Not a pool: W3 and W4's floor. `workers` threads started for the
// measurement take task numbers from one atomic counter, so nothing is
// queued, put to sleep or woken; what it loses against the ideal is what
// the machine itself loses: other tenants, clock and timer interrupts, the
// cores' speed with both busy (plus starting the threads, about 0.1 ms
// against W3's ~100 and W4's ~400). A pool can only add to that.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace bench {

struct BareThreads {
    explicit BareThreads(std::size_t n) : workers(n) {}
    std::size_t workers;
};

/// W3 and W4's run_all(n, task, on_post) on bare threads (see run_all.hpp).
/// Not const: as exact a match as the pools' runner(B&), and not a
/// template, so it wins.
inline auto runner(BareThreads& bare) {
    return [workers = bare.workers](std::size_t n, auto task, auto /*on_post: all are there from the start*/) {
        std::atomic<std::size_t> next{0};
        std::vector<std::jthread> threads;
        for (std::size_t t = 0; t < workers; ++t) {
            threads.emplace_back([&] {
                for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) task(i);
            });
        }
    };  // the threads join as they go out of scope: every task has run
}

} // namespace bench
