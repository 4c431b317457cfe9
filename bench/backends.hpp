// Adapters that give every pool under test the same three verbs, so that a
// workload is written once: submit (a value through a handle), post (fire and
// forget), and wait_idle. Each adapter is the natural, documented way to use
// its pool; where a pool has no handle type the adapter says what stands in.
#pragma once

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef TASKDIST_BENCH_TBB
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#endif
#ifdef TASKDIST_BENCH_ASIO
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#endif

namespace bench {

/// What W2 and W5's tasks increment: alone on its cache line. Every task
/// writes it, from whichever worker runs it; a pool object on the stack
/// beside it, which the producer reads on every post, shared its line in
/// some processes and not in others (the stack's placement is random per
/// process), and that pool's W2 then ran 1.2-1.4x slower. Two identical
/// taskdist pools paired read 1.18-1.31 in half of 16 processes that way.
struct alignas(64) TaskCounter {
    void add() noexcept { n.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return n.load(std::memory_order_relaxed); }
    std::atomic<std::uint64_t> n{0};
};
static_assert(sizeof(TaskCounter) == 64);

/// The baseline: one mutex, one condition variable, a deque of
/// std::function, std::packaged_task for results. What a pool written in an
/// afternoon looks like.
class MutexPool {
public:
    explicit MutexPool(std::size_t workers) {
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { run(); });
    }
    MutexPool(const MutexPool&) = delete;
    MutexPool& operator=(const MutexPool&) = delete;
    ~MutexPool() {
        {
            std::lock_guard lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }

    template <class F>
    void post(F&& f) {
        {
            std::lock_guard lock(m_);
            q_.emplace_back(std::forward<F>(f));
            ++pending_;
        }
        cv_.notify_one();
    }

    template <class F>
    auto submit(F&& f) {
        using R = decltype(f());
        auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
        auto fut = task->get_future();
        post([task] { (*task)(); });
        return fut;
    }

    void wait_idle() {
        std::unique_lock lock(m_);
        idle_cv_.wait(lock, [this] { return pending_ == 0; });
    }

private:
    void run() {
        for (;;) {
            std::function<void()> f;
            {
                std::unique_lock lock(m_);
                cv_.wait(lock, [this] { return stop_ || !q_.empty(); });
                if (q_.empty()) return;
                f = std::move(q_.front());
                q_.pop_front();
            }
            f();
            std::lock_guard lock(m_);
            if (--pending_ == 0) idle_cv_.notify_all();
        }
    }

    std::mutex m_;
    std::condition_variable cv_, idle_cv_;
    std::deque<std::function<void()>> q_;
    std::size_t pending_ = 0;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

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

/// Results are read the same way from every handle-like type.
template <class H>
auto take(H& h) {
    return h.get();
}

#ifdef TASKDIST_BENCH_TBB
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
#endif

#ifdef TASKDIST_BENCH_ASIO
/// boost::asio::thread_pool; results through std::packaged_task futures,
/// idleness through a counter (the pool's own wait() ends it).
struct AsioPool {
    explicit AsioPool(std::size_t workers) : pool(workers) {}
    ~AsioPool() { pool.join(); }
    template <class F>
    void post(F&& f) {
        pending.fetch_add(1, std::memory_order_relaxed);
        boost::asio::post(pool, [this, f = std::forward<F>(f)]() mutable {
            f();
            pending.fetch_sub(1, std::memory_order_release);
        });
    }
    template <class F>
    auto submit(F&& f) {
        using R = decltype(f());
        std::packaged_task<R()> task(std::forward<F>(f));
        auto fut = task.get_future();
        post(std::move(task));
        return fut;
    }
    void wait_idle() {
        while (pending.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    }
    boost::asio::thread_pool pool;
    std::atomic<long> pending{0};
};
#endif

} // namespace bench
