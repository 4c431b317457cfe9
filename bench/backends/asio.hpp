// boost::asio::thread_pool as a backend (when CMake found Boost); results
// through std::packaged_task futures, idleness through a counter (the pool's
// own wait() ends it). post and submit are thread-safe.
#pragma once

#ifdef TASKDIST_BENCH_ASIO
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <future>
#include <thread>
#include <utility>

namespace bench {

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

} // namespace bench
#endif
