// taskdist as a backend, two ways: its general-purpose pool of callables
// (BasicThreadPool, any distributor), and its handler pool (WorkerPool, the
// task a plain value: no callable at all). Thread-safety is the pools'.
#pragma once

#include <taskdist/taskdist.hpp>

#include <cstddef>
#include <utility>

namespace bench {

/// taskdist's general-purpose pool (callables), with any distributor.
template <class Dist>
struct TaskdistCallables {
    explicit TaskdistCallables(std::size_t workers) : pool(taskdist::PoolOptions{.workers = workers}) {}
    template <class F>
    auto submit(F&& f) {
        return pool.submit(std::forward<F>(f));
    }
    template <class F>
    void post(F&& f) {
        pool.post(std::forward<F>(f));
    }
    void wait_idle() { pool.wait_idle(); }
    taskdist::BasicThreadPool<Dist> pool;
};

/// taskdist's handler pool for W1: the task is a long, the handler adds 1.
template <class Dist>
using HandlerPool = taskdist::WorkerPool<long, long, Dist>;

template <class Dist>
HandlerPool<Dist> handler_pool(std::size_t workers) {
    return HandlerPool<Dist>([](long x) { return x + 1; }, {.workers = workers});
}

} // namespace bench
