// Helpers shared by the test executables: a gate that holds tasks until the
// test opens it, and waits that turn a hang into a failure.
//
// Timeouts here (`patience`) only bound how long a broken test can hang;
// nothing waits a fixed time for something to happen.
#pragma once

#include "catch.hpp"

#include <taskdist/stats.hpp>
#include <taskdist/task_handle.hpp>

#include <chrono>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>

namespace test_support {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long to wait for something that should happen at once before calling
// it a failure. Generous, so that a loaded machine or a sanitizer never trips it.
inline constexpr auto patience = 30s;

// A one-shot barrier a task blocks on until the test opens it.
//
// Declare the Gate before the pool (tasks refer to it, so it must outlive
// them) and its open_on_exit() guard after the pool: the guard is destroyed
// first, so a failing REQUIRE frees blocked workers before the pool's
// destructor waits for them.
class Gate {
public:
    void wait() const { latch_.wait(); }
    bool is_open() const { return latch_.try_wait(); }
    void open() {
        std::call_once(opened_, [this] { latch_.count_down(); });
    }

    class Opener {
    public:
        explicit Opener(Gate& g) : g_(g) {}
        Opener(const Opener&) = delete;
        Opener& operator=(const Opener&) = delete;
        ~Opener() { g_.open(); }

    private:
        Gate& g_;
    };
    [[nodiscard]] Opener open_on_exit() { return Opener(*this); }

private:
    mutable std::latch latch_{1};
    std::once_flag opened_;
};

// get(), but a task that never resolves fails the test instead of hanging it.
template <class R>
R await(taskdist::TaskHandle<R>& handle) {
    INFO("a task that should have run did not resolve within " << patience.count() << " s");
    REQUIRE(handle.wait_for(patience));
    return handle.get();
}

// True if the future became ready within `patience`.
template <class T>
bool arrives(std::future<T>& f) {
    return f.wait_for(patience) == std::future_status::ready;
}
template <class T>
bool arrives(std::shared_future<T>& f) {
    return f.wait_for(patience) == std::future_status::ready;
}

// Work that takes at least `d` of the worker's time (a workload, not a wait).
inline void spin_for(std::chrono::nanoseconds d) {
    const Clock::time_point until = Clock::now() + d;
    while (Clock::now() < until) {
    }
}

// Which exception a resolved handle holds, by name, so that a mismatch
// prints what was seen.
template <class R>
std::string outcome_of(taskdist::TaskHandle<R>& h) {
    try {
        (void)h.get();
        return "value";
    } catch (const taskdist::TaskTimeout&) {
        return "TaskTimeout";
    } catch (const taskdist::TaskCancelled&) {
        return "TaskCancelled";
    } catch (const taskdist::WorkerFault&) {
        return "WorkerFault";
    } catch (const taskdist::PoolBroken&) {
        return "PoolBroken";
    } catch (const taskdist::TaskRejected&) {
        return "TaskRejected";
    } catch (const std::runtime_error&) {
        return "runtime_error";
    } catch (...) {
        return "other";
    }
}

// The snapshot identity: every accepted task is counted exactly once, by its
// outcome or as queued or running.
inline void check_balanced(const taskdist::PoolStats& s) {
    INFO("submitted " << s.submitted << " completed " << s.completed << " failed " << s.failed << " timed_out "
                      << s.timed_out << " cancelled " << s.cancelled << " rejected " << s.rejected << " queued "
                      << s.queued << " running " << s.running);
    CHECK(s.submitted == s.completed + s.failed + s.timed_out + s.cancelled + s.rejected + s.queued + s.running);
}

// A cooperative handler's wait: until `token` is stop-requested (true) or
// `cap` passes (false). The callback may run on the thread that requests the
// stop, so it only fulfils a promise.
inline bool wait_for_stop(const std::stop_token& token, std::chrono::nanoseconds cap) {
    std::promise<void> stopped;
    auto f = stopped.get_future();
    std::stop_callback cb(token, [&stopped] { stopped.set_value(); });
    return f.wait_for(cap) == std::future_status::ready;
}

} // namespace test_support
