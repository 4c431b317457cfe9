// taskdist: a thread that fires timed events, earliest first (the pool's
// supervisor runs on one).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "platform.hpp"
#include "ticks.hpp"

namespace taskdist::detail {

/// Calls `fire(event)` on its own thread once steady_ns() reaches the
/// event's `at`, earliest first; events due at the same time fire in no set
/// order. The thread starts with the first schedule(), so a pool that never
/// times anything has none.
///
/// Event: movable, with a `std::int64_t at` (steady_ns). Fire: callable as
/// `fire(Event&&)`, run without the lock held, so it may schedule() again.
///
/// Thread-safety: schedule() and stop() from any thread. stop() (or the
/// destructor) may also run inside fire: the thread is then detached, and
/// once fire returns it touches nothing of this object, which may be gone.
/// Invariant: once stop() has begun, nothing fires and schedule() drops
/// what it is given; every event still queued is destroyed by stop(), on
/// its caller's thread.
template <class Event, class Fire>
class TimerThread {
public:
    TimerThread(Fire fire, std::string name) : fire_(std::move(fire)), name_(std::move(name)) {}
    TimerThread(const TimerThread&) = delete;
    TimerThread& operator=(const TimerThread&) = delete;
    ~TimerThread() { stop(); }

    /// Queues `ev`; false (and `ev` dropped) once stop() has begun. Throws
    /// what starting the thread or growing the queue throws; then nothing
    /// was queued.
    bool schedule(Event&& ev) {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        if (!thread_.joinable()) thread_ = std::thread([this] { main(); });
        // Waking the thread only for a new earliest event: it already
        // sleeps until the current earliest one, which comes first.
        const bool earliest = events_.empty() || ev.at < events_.front().at;
        events_.push_back(std::move(ev));
        std::push_heap(events_.begin(), events_.end(), later);
        if (earliest) cv_.notify_one();
        return true;
    }

    /// Makes every queued event that `now` picks due at once (a pool that
    /// stops now must not wait out a retry's back-off). Thread-safe.
    template <class Pred>
    void fire_early(Pred now) {
        {
            std::lock_guard lock(mutex_);
            bool any = false;
            for (Event& e : events_) {
                if (e.at > 0 && now(e)) {
                    e.at = 0;
                    any = true;
                }
            }
            if (!any) return;
            std::make_heap(events_.begin(), events_.end(), later);
        }
        cv_.notify_one();
    }

    /// Stops firing, joins the thread (unless called from it) and destroys
    /// the events left. Idempotent.
    void stop() noexcept {
        std::thread t;
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            t = std::move(thread_);
        }
        cv_.notify_all();
        if (t.joinable()) {
            if (t.get_id() == std::this_thread::get_id()) {
                // Told through the thread's own variable: this object may be
                // destroyed before fire returns to main().
                stopped_inside_fire = true;
                t.detach();
            } else {
                t.join();
            }
        }
        // Destroyed outside the lock: an event may own things whose
        // destructors take other locks (a task state's last reference).
        std::vector<Event> left;
        {
            std::lock_guard lock(mutex_);
            left.swap(events_);
        }
    }

    /// Events queued and not yet fired. Thread-safe.
    std::size_t pending() const {
        std::lock_guard lock(mutex_);
        return events_.size();
    }

private:
    static bool later(const Event& a, const Event& b) noexcept { return a.at > b.at; }

    void main() {
        set_current_thread_name(name_, 0);
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            if (events_.empty()) {
                cv_.wait(lock);
                continue;
            }
            const std::int64_t now = steady_ns();
            if (events_.front().at > now) {
                // An hour at most: an event due "never" (a timeout of
                // nanoseconds::max() saturates to INT64_MAX) made wait_for
                // add that to the clock inside libstdc++, overflow into the
                // past and return at once, spinning with the lock held.
                constexpr std::int64_t hour = std::int64_t{3600} * 1'000'000'000;
                cv_.wait_for(lock, std::chrono::nanoseconds(std::min(events_.front().at - now, hour)));
                continue;
            }
            std::pop_heap(events_.begin(), events_.end(), later);
            {
                // Destroyed before the lock is retaken, like stop()'s leftovers.
                Event ev = std::move(events_.back());
                events_.pop_back();
                lock.unlock();
                fire_(std::move(ev));
            }
            if (stopped_inside_fire) return;  // `this` may be gone
            lock.lock();
        }
    }

    /// Set by stop() when it runs on this timer's own thread (a thread
    /// belongs to one timer, so one flag per thread is enough).
    static inline thread_local bool stopped_inside_fire = false;

    Fire fire_;
    const std::string name_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Event> events_;  // a min-heap on at
    std::thread thread_;
    bool stopping_ = false;
};

} // namespace taskdist::detail
