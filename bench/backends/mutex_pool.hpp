// The baseline backend: one mutex, one condition variable, a deque of
// std::function, std::packaged_task for results. What a pool written in an
// afternoon looks like. post, submit and wait_idle are thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {

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

} // namespace bench
