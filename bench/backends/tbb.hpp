// oneTBB as a backend (when CMake found it): task_group in an arena of its
// own, and task_arena::enqueue. post and wait_idle are called from one
// thread at a time.
#pragma once

#ifdef TASKDIST_BENCH_TBB
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>
#include <cstddef>
#include <thread>
#include <utility>

namespace bench {

/// oneTBB task_group in its own arena of `workers` threads. task_group has no
/// per-task handle: a task writes its result into a slot the caller reads
/// after wait(), which is how task_group code returns values.
struct TbbTaskGroup {
    // TBB's market holds cores - 1 threads by default: allow as many as asked.
    explicit TbbTaskGroup(std::size_t workers)
        : limit(tbb::global_control::max_allowed_parallelism, workers + 1), arena(static_cast<int>(workers)) {}
    template <class F>
    void post(F&& f) {
        arena.execute([&] { group.run(std::forward<F>(f)); });
    }
    void wait_idle() {
        arena.execute([&] { group.wait(); });
    }
    tbb::global_control limit;
    tbb::task_arena arena;
    tbb::task_group group;
};

/// oneTBB task_arena::enqueue (fire and forget); idleness is a counter.
struct TbbArena {
    // No slot for the caller (it only enqueues), so `workers` TBB threads,
    // which the market must be allowed to have.
    explicit TbbArena(std::size_t workers)
        : limit(tbb::global_control::max_allowed_parallelism, workers + 1), arena(static_cast<int>(workers), 0) {}
    template <class F>
    void post(F&& f) {
        pending.fetch_add(1, std::memory_order_relaxed);
        // TBB calls what it enqueues as const, so the wrapper is not mutable
        // and the workloads' callables are const-callable.
        arena.enqueue([this, f = std::forward<F>(f)] {
            f();
            pending.fetch_sub(1, std::memory_order_release);
        });
    }
    void wait_idle() {
        while (pending.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    }
    tbb::global_control limit;
    tbb::task_arena arena;
    std::atomic<long> pending{0};
};

} // namespace bench
#endif
