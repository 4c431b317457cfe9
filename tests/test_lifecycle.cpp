// Tests of the pool's lifecycle: shutdown_now() and its accounting, pausing
// and resuming dispatch, and observers.
//
// Synchronisation is explicit (gates, futures, the pool's own callbacks);
// `patience` only turns a hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/detail/timer_thread.hpp>
#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

} // namespace

TEST_CASE("shutdown_now() does not wait out a retry's back-off: the task waiting to retry resolves TaskCancelled "
          "and comes back at once") {
    std::promise<void> failed;
    taskdist::WorkerPool<int, int> pool(
        [&](int) -> int {
            failed.set_value();
            throw std::runtime_error("try again");
        },
        {.workers = 1, .max_attempts = 2, .retry_if = [](const std::exception_ptr&) { return true; },
         .retry_backoff = std::chrono::hours(1)});
    auto h = pool.submit(7);
    auto failed_f = failed.get_future();
    REQUIRE(arrives(failed_f));
    // The retry is queued behind its back-off (retried counts it first).
    for (auto until = std::chrono::steady_clock::now() + patience;
         pool.stats().retried == 0 && std::chrono::steady_clock::now() < until;) {
        std::this_thread::yield();
    }
    REQUIRE(pool.stats().retried == 1);

    const auto t0 = std::chrono::steady_clock::now();
    taskdist::ShutdownReport<int> report = pool.shutdown_now();
    CHECK(std::chrono::steady_clock::now() - t0 < patience);  // an hour, waited out, before
    CHECK(report.never_started == 1);
    REQUIRE(report.tasks.size() == 1);
    CHECK(report.tasks.front() == 7);
    REQUIRE(h.ready());
    CHECK(outcome_of(h) == "TaskCancelled");
}

TEST_CASE("shutdown_now(): queued tasks resolve TaskCancelled unstarted and come back; the running one "
          "is asked to stop; the counts add up") {
    std::promise<void> started;
    std::atomic<int> ran{0};
    taskdist::WorkerPool<std::unique_ptr<int>, int> pool(
        [&](std::unique_ptr<int> p, taskdist::TaskContext& ctx) {
            if (*p == 0) {
                started.set_value();
                // Returns only once shutdown_now() asks it to stop.
                return wait_for_stop(ctx.stop_token(), patience) ? -1 : -2;
            }
            ran.fetch_add(1);
            return *p;
        },
        {.workers = 1});

    auto first = pool.submit(std::make_unique<int>(0));
    auto started_f = started.get_future();
    REQUIRE(arrives(started_f));
    std::vector<taskdist::TaskHandle<int>> queued;
    for (int i = 1; i <= 10; ++i) queued.push_back(pool.submit(std::make_unique<int>(i)));

    taskdist::ShutdownReport<std::unique_ptr<int>> report = pool.shutdown_now();

    CHECK(report.never_started == 10);
    REQUIRE(report.tasks.size() == 10);
    std::vector<int> payloads;
    for (const auto& t : report.tasks) payloads.push_back(*t);
    std::sort(payloads.begin(), payloads.end());
    CHECK(payloads == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    CHECK(ran.load() == 0);

    INFO("the running task saw its stop request (-1) instead of waiting out its cap (-2)");
    CHECK(await(first) == -1);
    for (auto& h : queued) {
        REQUIRE(h.ready());
        CHECK(outcome_of(h) == "TaskCancelled");
    }
    const taskdist::PoolStats s = pool.stats();
    CHECK(s.submitted == 11);
    CHECK(s.completed == 1);
    CHECK(s.cancelled == 10);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);

    CHECK_THROWS_AS(pool.submit(std::make_unique<int>(99)), taskdist::PoolClosed);
    INFO("a second call finds nothing left");
    CHECK(pool.shutdown_now().never_started == 0);
}

TEST_CASE("shutdown_now(): a running task that ignores the stop past hang_grace resolves TaskCancelled, not "
          "TaskTimeout (it had no timeout), and shutdown_now() returns") {
    std::promise<void> started;
    std::promise<void> release;
    auto released = release.get_future().share();
    taskdist::WorkerPool<int, int> pool(
        [&started, released](int x) {
            started.set_value();
            (void)released.wait_for(patience);  // deaf to its stop token
            return x;
        },
        {.workers = 1, .hang_grace = 20ms, .quarantine_wait = 100ms});
    auto h = pool.submit(1);
    REQUIRE(started.get_future().wait_for(patience) == std::future_status::ready);

    std::promise<std::size_t> done;
    auto done_f = done.get_future();
    std::jthread stopper([&] { done.set_value(pool.shutdown_now().never_started); });
    REQUIRE(h.wait_for(patience));
    CHECK(outcome_of(h) == "TaskCancelled");
    REQUIRE(done_f.wait_for(patience) == std::future_status::ready);
    CHECK(done_f.get() == 0);
    release.set_value();  // let the quarantined thread end
    const auto s = pool.stats();
    CHECK(s.cancelled == 1);
    CHECK(s.timed_out == 0);
    CHECK(s.submitted == s.completed + s.failed + s.timed_out + s.cancelled);
}

TEST_CASE("shutdown_now() with per-worker queues cancels what waits in every worker's queue") {
    std::atomic<int> holding{0};
    std::promise<void> both;
    taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x < 0) {
                if (holding.fetch_add(1) == 1) both.set_value();
                return wait_for_stop(ctx.stop_token(), patience) ? x : 0;
            }
            return x;
        },
        {.workers = 2});
    std::vector<taskdist::TaskHandle<int>> held;
    held.push_back(pool.submit(-1));
    held.push_back(pool.submit(-2));
    auto both_f = both.get_future();
    REQUIRE(arrives(both_f));
    std::vector<taskdist::TaskHandle<int>> queued;
    for (int i = 0; i < 8; ++i) queued.push_back(pool.submit(i));
    CHECK(pool.stats().per_worker[0].queued == 4);
    CHECK(pool.stats().per_worker[1].queued == 4);

    const auto report = pool.shutdown_now();
    CHECK(report.never_started == 8);
    CHECK(report.tasks.size() == 8);
    INFO("each held task saw the stop request and returned its own value");
    CHECK(await(held[0]) == -1);
    CHECK(await(held[1]) == -2);
    for (auto& h : queued) CHECK(outcome_of(h) == "TaskCancelled");
    const auto s = pool.stats();
    CHECK(s.submitted == s.completed + s.cancelled);
    CHECK(s.cancelled == 8);
}

TEST_CASE("ThreadPool::shutdown_now() returns how many callables never started; post()ed ones count too") {
    std::promise<void> started;
    taskdist::ThreadPool pool(taskdist::PoolOptions{.workers = 1});
    std::atomic<int> ran{0};
    auto first = pool.submit([&](taskdist::TaskContext& ctx) {
        started.set_value();
        return wait_for_stop(ctx.stop_token(), patience) ? 1 : 0;
    });
    auto started_f = started.get_future();
    REQUIRE(arrives(started_f));
    auto queued = pool.submit([&] { return ran.fetch_add(1); });
    for (int i = 0; i < 5; ++i) pool.post([&] { ran.fetch_add(1); });

    CHECK(pool.shutdown_now() == 6);
    CHECK(ran.load() == 0);
    CHECK(await(first) == 1);
    CHECK(outcome_of(queued) == "TaskCancelled");
    const auto s = pool.stats();
    CHECK(s.cancelled == 6);
    CHECK(s.submitted == s.completed + s.cancelled);
}

// ---- pause / resume ------------------------------------------------------------

TEST_CASE("pause(): queued tasks wait (a queued deadline still fires), the running task finishes, and "
          "resume() lets the rest run") {
    Gate gate;
    std::promise<void> started;
    auto started_f = started.get_future();
    std::atomic<int> ran{0};
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 0) {
                started.set_value();
                gate.wait();
            }
            ran.fetch_add(1);
            return x;
        },
        {.workers = 2});
    auto opener = gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(started_f));
    pool.pause();
    CHECK(pool.paused());
    CHECK(pool.stats().paused);

    std::vector<taskdist::TaskHandle<int>> queued;
    for (int i = 1; i <= 6; ++i) queued.push_back(pool.submit(i));
    auto expiring = pool.submit(7, {.deadline = Clock::now() + 20ms});
    gate.open();
    CHECK(await(running) == 0);  // a task already running is not held back

    REQUIRE(expiring.wait_for(patience));
    CHECK(outcome_of(expiring) == "TaskTimeout");  // resolved in the queue: never started
    CHECK_FALSE(pool.wait_idle_for(20ms));
    CHECK(ran.load() == 1);
    for (auto& h : queued) CHECK_FALSE(h.ready());
    CHECK(pool.stats().queued == 6);

    pool.resume();
    CHECK_FALSE(pool.paused());
    for (int i = 1; i <= 6; ++i) CHECK(await(queued[static_cast<std::size_t>(i - 1)]) == i);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.completed == 7);
    CHECK(s.timed_out == 1);
    CHECK_FALSE(s.paused);
}

TEST_CASE("pause() holds per-worker queues too, and shutdown() ends a pause and drains") {
    std::atomic<int> ran{0};
    taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool(
        [&](int x) {
            ran.fetch_add(1);
            return x;
        },
        {.workers = 2});
    pool.pause();
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 0; i < 20; ++i) handles.push_back(pool.submit(i));
    CHECK_FALSE(pool.wait_idle_for(20ms));
    CHECK(ran.load() == 0);
    pool.shutdown();
    CHECK(ran.load() == 20);
    for (int i = 0; i < 20; ++i) CHECK(await(handles[static_cast<std::size_t>(i)]) == i);
    CHECK_FALSE(pool.paused());
}

TEST_CASE("shutdown_now() on a paused pool cancels and returns everything queued") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = 2});
    pool.pause();
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 0; i < 10; ++i) handles.push_back(pool.submit(i));
    const auto report = pool.shutdown_now();
    CHECK(report.never_started == 10);
    CHECK(report.tasks.size() == 10);
    for (auto& h : handles) CHECK(outcome_of(h) == "TaskCancelled");
}

// ---- shutdown with a drain limit ---------------------------------------------

TEST_CASE("shutdown(drain_timeout): a queue that drains in time reports nothing left") {
    std::atomic<int> ran{0};
    taskdist::ThreadPool pool({.workers = 2});
    for (int i = 0; i < 50; ++i) pool.post([&ran] { ran.fetch_add(1); });
    CHECK(pool.shutdown(patience) == 0);
    CHECK(ran.load() == 50);
}

TEST_CASE("shutdown(drain_timeout): what is still queued at the limit is cancelled and handed back, and the "
          "running task is asked to stop") {
    std::promise<void> started;
    auto started_f = started.get_future();
    taskdist::WorkerPool<int, int> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x == 0) {
                started.set_value();
                return wait_for_stop(ctx.stop_token(), patience) ? -1 : -2;
            }
            return x;
        },
        {.workers = 1});
    auto first = pool.submit(0);
    REQUIRE(arrives(started_f));
    std::vector<taskdist::TaskHandle<int>> queued;
    for (int i = 1; i <= 5; ++i) queued.push_back(pool.submit(i));

    constexpr auto drain = 30ms;
    const auto t0 = Clock::now();
    const auto report = pool.shutdown(drain);
    CHECK(Clock::now() - t0 >= drain);
    CHECK(report.never_started == 5);
    CHECK(report.tasks.size() == 5);
    CHECK(await(first) == -1);
    for (auto& h : queued) CHECK(outcome_of(h) == "TaskCancelled");
    CHECK_THROWS_AS(pool.submit(9), taskdist::PoolClosed);
}

// ---- observers -----------------------------------------------------------------

namespace {

// Records every hook call with a global sequence number; read after the pool
// has stopped. Tasks are told apart by TaskInfo::priority (ignored by
// SharedQueue, so it can carry an id).
class Recorder final : public taskdist::PoolObserver {
public:
    enum Kind { submit, start, finish, worker_start, worker_stop, replace };
    struct Event {
        Kind kind;
        int task = -1;
        std::size_t worker = 0;
        unsigned attempt = 0;
        taskdist::AttemptOutcome outcome = taskdist::AttemptOutcome::completed;
    };

    void on_submit(const taskdist::TaskInfo& t) override { add({submit, t.priority, 0, t.attempt}); }
    void on_start(const taskdist::WorkerView& w, const taskdist::TaskInfo& t) override {
        add({start, t.priority, w.index(), t.attempt});
    }
    void on_finish(const taskdist::WorkerView& w, const taskdist::TaskInfo& t,
                   taskdist::AttemptOutcome o) override {
        add({finish, t.priority, w.index(), t.attempt, o});
    }
    void on_worker_start(const taskdist::WorkerView& w) override { add({worker_start, -1, w.index()}); }
    void on_worker_stop(const taskdist::WorkerView& w) override { add({worker_stop, -1, w.index()}); }
    void on_worker_replace(const taskdist::ReplaceEvent& e) override { add({replace, -1, e.worker}); }

    std::vector<Event> events() const {
        std::lock_guard lock(mutex_);
        return events_;
    }

private:
    void add(Event e) {
        std::lock_guard lock(mutex_);
        events_.push_back(e);
    }
    mutable std::mutex mutex_;
    std::vector<Event> events_;
};

} // namespace

TEST_CASE("observers: per task submit, start, finish in that order on the worker that ran it; per worker "
          "start first and stop last") {
    constexpr int tasks = 200;
    auto rec = std::make_shared<Recorder>();
    std::vector<taskdist::TaskHandle<std::size_t>> handles;
    {
        taskdist::WorkerPool<int, std::size_t> pool(
            [](int x, taskdist::TaskContext& ctx) {
                if (x % 50 == 49) throw std::runtime_error("expected test failure");
                return ctx.worker_index();
            },
            {.workers = 2, .observer = rec});
        for (int i = 0; i < tasks; ++i) handles.push_back(pool.submit(i, {.priority = i}));
        pool.shutdown();
    }
    std::vector<std::size_t> ran_on(tasks, 99);
    for (int i = 0; i < tasks; ++i) {
        auto& h = handles[static_cast<std::size_t>(i)];
        if (i % 50 == 49) {
            CHECK(outcome_of(h) == "runtime_error");
        } else {
            ran_on[static_cast<std::size_t>(i)] = await(h);
        }
    }

    const auto ev = rec->events();
    // Position of each task's events, and of each worker's first/last.
    std::vector<int> at_submit(tasks, -1), at_start(tasks, -1), at_finish(tasks, -1);
    std::vector<std::size_t> start_worker(tasks, 99), finish_worker(tasks, 99);
    std::vector<taskdist::AttemptOutcome> outcome(tasks);
    int worker_start_at[2] = {-1, -1}, worker_stop_at[2] = {-1, -1};
    int first_start_on[2] = {1 << 30, 1 << 30}, last_finish_on[2] = {-1, -1};
    int bad = 0;
    for (int k = 0; k < static_cast<int>(ev.size()); ++k) {
        const auto& e = ev[static_cast<std::size_t>(k)];
        const auto t = static_cast<std::size_t>(e.task);
        switch (e.kind) {
            case Recorder::submit:
                bad += at_submit[t] != -1;
                at_submit[t] = k;
                break;
            case Recorder::start:
                bad += at_start[t] != -1 || e.worker > 1;
                at_start[t] = k;
                start_worker[t] = e.worker;
                first_start_on[e.worker] = std::min(first_start_on[e.worker], k);
                break;
            case Recorder::finish:
                bad += at_finish[t] != -1 || e.worker > 1;
                at_finish[t] = k;
                finish_worker[t] = e.worker;
                outcome[t] = e.outcome;
                last_finish_on[e.worker] = std::max(last_finish_on[e.worker], k);
                break;
            case Recorder::worker_start:
                bad += worker_start_at[e.worker] != -1;
                worker_start_at[e.worker] = k;
                break;
            case Recorder::worker_stop:
                bad += worker_stop_at[e.worker] != -1;
                worker_stop_at[e.worker] = k;
                break;
            case Recorder::replace:
                ++bad;
                break;
        }
    }
    CHECK(bad == 0);
    CHECK(ev.size() == std::size_t{3 * tasks + 4});
    int out_of_order = 0, wrong_worker = 0, wrong_outcome = 0;
    for (std::size_t t = 0; t < tasks; ++t) {
        out_of_order += !(at_submit[t] >= 0 && at_submit[t] < at_start[t] && at_start[t] < at_finish[t]);
        const bool failed = t % 50 == 49;
        if (!failed) wrong_worker += start_worker[t] != ran_on[t] || finish_worker[t] != ran_on[t];
        wrong_outcome +=
            outcome[t] != (failed ? taskdist::AttemptOutcome::failed : taskdist::AttemptOutcome::completed);
    }
    CHECK(out_of_order == 0);
    CHECK(wrong_worker == 0);
    CHECK(wrong_outcome == 0);
    for (int w = 0; w < 2; ++w) {
        INFO("worker " << w);
        CHECK(worker_start_at[w] >= 0);
        CHECK(worker_start_at[w] < first_start_on[w]);
        CHECK(worker_stop_at[w] > last_finish_on[w]);
    }
}

TEST_CASE("observers: a retried attempt is reported as retrying, then the next attempt; a WorkerFault "
          "reports the worker's replacement; a throwing hook changes nothing") {
    struct Throwing final : taskdist::PoolObserver {
        void on_start(const taskdist::WorkerView&, const taskdist::TaskInfo&) override {
            throw std::runtime_error("expected test output: an observer hook threw");
        }
    };
    auto rec = std::make_shared<Recorder>();
    std::atomic<int> calls{0};
    taskdist::WorkerPool<int, int> pool(
        [&calls](int x) {
            if (calls.fetch_add(1) == 0) throw taskdist::WorkerFault("expected test output: broken once");
            return x;
        },
        {.workers = 1, .max_attempts = 2, .retry_backoff = 0ms, .observer = rec});
    auto h5 = pool.submit(5, {.priority = 0});
    CHECK(await(h5) == 5);
    pool.wait_idle();

    std::vector<std::string> seen;
    for (const auto& e : rec->events()) {
        switch (e.kind) {
            case Recorder::submit: seen.emplace_back("submit"); break;
            case Recorder::start: seen.push_back("start " + std::to_string(e.attempt)); break;
            case Recorder::finish:
                seen.push_back(std::string("finish ") + std::to_string(e.attempt) +
                               (e.outcome == taskdist::AttemptOutcome::retrying ? " retrying" : "") +
                               (e.outcome == taskdist::AttemptOutcome::completed ? " completed" : ""));
                break;
            case Recorder::worker_start: seen.emplace_back("worker_start"); break;
            case Recorder::worker_stop: seen.emplace_back("worker_stop"); break;
            case Recorder::replace: seen.emplace_back("replace"); break;
        }
    }
    // The replacement is reported when the fault is seen, before the task's
    // attempt is finished; the worker stays the same thread (its state is
    // rebuilt), so there is no second worker_start.
    // The worker's start and the submit happen on different threads, in
    // either order; the worker's start comes before its first task.
    const auto ws = std::find(seen.begin(), seen.end(), "worker_start");
    REQUIRE(ws != seen.end());
    CHECK(ws < std::find(seen.begin(), seen.end(), "start 1"));
    seen.erase(ws);
    CHECK(seen == std::vector<std::string>{"submit", "start 1", "replace", "finish 1 retrying", "start 2",
                                           "finish 2 completed"});

    taskdist::WorkerPool<int, int> quiet([](int x) { return x; },
                                         {.workers = 1, .observer = std::make_shared<Throwing>()});
    auto h = quiet.submit(3);
    CHECK(await(h) == 3);
}

TEST_CASE("observers: every attempt of a task sees its priority, key and submit time, and a retry names the "
          "worker the last attempt failed on") {
    struct Starts final : taskdist::PoolObserver {
        void on_submit(const taskdist::TaskInfo& t) override {
            std::lock_guard lock(mutex);
            submitted.push_back(t);
        }
        void on_start(const taskdist::WorkerView& w, const taskdist::TaskInfo& t) override {
            std::lock_guard lock(mutex);
            seen.emplace_back(w.index(), t);
        }
        std::mutex mutex;
        std::vector<taskdist::TaskInfo> submitted;
        std::vector<std::pair<std::size_t, taskdist::TaskInfo>> seen;
    };
    auto starts = std::make_shared<Starts>();
    std::atomic<int> calls{0};
    // LeastBusy places a retry away from the worker it failed on (SharedQueue
    // only bounces it once, so the same worker may still take it).
    taskdist::WorkerPool<int, int, taskdist::LeastBusy> pool(
        [&calls](int x) {
            if (calls.fetch_add(1) == 0) throw std::runtime_error("expected test output: failed once");
            return x;
        },
        {.workers = 2,
         .max_attempts = 2,
         .retry_if = [](const std::exception_ptr&) { return true; },
         .retry_backoff = 0ms,
         .observer = starts});
    const std::uint64_t key = (std::uint64_t{1} << 63) | 12345u;  // all 64 bits must survive
    const auto before = std::chrono::steady_clock::now();
    auto h = pool.submit(7, {.priority = -3, .key = key});
    const auto after = std::chrono::steady_clock::now();
    CHECK(await(h) == 7);
    pool.wait_idle();

    // A task without a key has none.
    auto plain = pool.submit(8);
    CHECK(await(plain) == 8);
    pool.wait_idle();

    std::lock_guard lock(starts->mutex);
    REQUIRE(starts->seen.size() == 3);
    CHECK_FALSE(starts->seen[2].second.key.has_value());
    CHECK(starts->seen[2].second.attempt == 1u);
    const auto& [first_worker, first] = starts->seen[0];
    const auto& [second_worker, second] = starts->seen[1];
    for (const taskdist::TaskInfo* t : {&first, &second}) {
        CHECK(t->priority == -3);
        REQUIRE(t->key.has_value());
        CHECK(*t->key == key);
        CHECK(t->submitted_at >= before);
        CHECK(t->submitted_at <= after);
    }
    CHECK(first.attempt == 1u);
    CHECK(first.previous_worker == taskdist::TaskInfo::no_worker);
    CHECK(second.attempt == 2u);
    CHECK(second.previous_worker == first_worker);
    CHECK(second_worker != first_worker);
    // Exactly the time the submit was stamped with, on every attempt.
    REQUIRE(starts->submitted.size() == 2);
    CHECK(first.submitted_at == starts->submitted[0].submitted_at);
    CHECK(second.submitted_at == starts->submitted[0].submitted_at);
}

TEST_CASE("on_submit that calls shutdown() or wait_idle() on its own pool gets WouldDeadlock instead of waiting "
          "for the task it reports, which still runs") {
    struct ShutsDown final : taskdist::PoolObserver {
        taskdist::ThreadPool* pool = nullptr;
        std::vector<std::string> refused;  // read by the test once the submit returned
        void on_submit(const taskdist::TaskInfo&) override {
            if (!pool) return;
            try {
                pool->shutdown();
                refused.emplace_back("shutdown() returned");
            } catch (const taskdist::WouldDeadlock&) {
                refused.emplace_back("shutdown()");
            }
            try {
                pool->wait_idle();
                refused.emplace_back("wait_idle() returned");
            } catch (const taskdist::WouldDeadlock&) {
                refused.emplace_back("wait_idle()");
            }
            pool = nullptr;
        }
    };
    auto obs = std::make_shared<ShutsDown>();
    taskdist::ThreadPool pool({.workers = 1, .observer = obs});
    obs->pool = &pool;
    auto h = pool.submit([] { return 7; });
    CHECK(await(h) == 7);
    CHECK(obs->refused == std::vector<std::string>{"shutdown()", "wait_idle()"});
    pool.shutdown();
    const auto s = pool.stats();
    CHECK(s.submitted == 1);
    CHECK(s.completed == 1);
}

TEST_CASE("a per-worker factory that waits for a task of its own pool waits for it like any thread, instead of "
          "running it without a handler") {
    std::promise<taskdist::WorkerPool<int, int>*> pool_p;
    auto pool_f = pool_p.get_future().share();
    std::promise<taskdist::TaskHandle<int>> nested_p;
    auto nested_f = nested_p.get_future();
    std::atomic<bool> waited_first{false};
    std::atomic<int> ready_in_factory{-1};
    taskdist::WorkerPool<int, int> pool(
        taskdist::per_worker(
            [&](std::size_t) {
                if (!waited_first.exchange(true) && pool_f.wait_for(patience) == std::future_status::ready) {
                    auto h = pool_f.get()->submit(41);
                    // The only worker is this one, still building: the task cannot run yet.
                    ready_in_factory = h.wait_for(200ms) ? 1 : 0;
                    nested_p.set_value(std::move(h));
                }
                return 1;
            },
            [](int& base, int x) { return base + x; }),
        {.workers = 1});
    pool_p.set_value(&pool);
    REQUIRE(arrives(nested_f));
    auto nested = nested_f.get();
    CHECK(await(nested) == 42);
    CHECK(ready_in_factory.load() == 0);
    CHECK(pool.stats().ran_inline == 0);
}

// ---- the supervisor's timer thread (detail::TimerThread) --------------------

namespace {

struct TimedEvent {
    std::int64_t at = 0;
    int id = 0;
    std::shared_ptr<int> owned;  // shows when stop() destroys what is left
};

} // namespace

TEST_CASE("TimerThread fires events earliest first, never before their time, and lets a firing schedule more",
          "[timer]") {
    struct Fired {
        int id;
        std::int64_t late_by;
    };
    std::mutex mutex;
    std::vector<Fired> fired;
    std::promise<void> all_fired;
    std::atomic<bool> rescheduled{false};
    using Timer = taskdist::detail::TimerThread<TimedEvent, std::function<void(TimedEvent&&)>>;
    std::unique_ptr<Timer> timer;
    timer = std::make_unique<Timer>(
        [&](TimedEvent&& ev) {
            const std::int64_t now = taskdist::detail::steady_ns();
            if (ev.id == 3) {  // schedules a fourth from inside a firing
                rescheduled = timer->schedule(TimedEvent{now + 1'000'000, 4, nullptr});
            }
            std::lock_guard lock(mutex);
            fired.push_back({ev.id, now - ev.at});
            if (fired.size() == 4) all_fired.set_value();
        },
        "timer-test");
    const std::int64_t t0 = taskdist::detail::steady_ns();
    // Out of order, so the heap has to sort them.
    REQUIRE(timer->schedule(TimedEvent{t0 + 30'000'000, 3, nullptr}));
    REQUIRE(timer->schedule(TimedEvent{t0 + 10'000'000, 1, nullptr}));
    REQUIRE(timer->schedule(TimedEvent{t0 + 20'000'000, 2, nullptr}));
    auto done = all_fired.get_future();
    REQUIRE(arrives(done));
    timer->stop();
    CHECK(rescheduled.load());
    std::lock_guard lock(mutex);
    REQUIRE(fired.size() == 4);
    for (std::size_t i = 0; i < fired.size(); ++i) {
        INFO("event " << i << " id " << fired[i].id << " late by " << fired[i].late_by << " ns");
        CHECK(fired[i].id == static_cast<int>(i) + 1);
        CHECK(fired[i].late_by >= 0);
    }
}

TEST_CASE("TimerThread::stop() destroys what is left unfired, and schedule() afterwards drops its event",
          "[timer]") {
    std::atomic<int> fired{0};
    auto fire = [&](TimedEvent&&) { fired.fetch_add(1); };
    taskdist::detail::TimerThread<TimedEvent, decltype(fire)> timer(fire, "timer-test");
    auto far = std::make_shared<int>(1);
    const std::int64_t an_hour = 3'600'000'000'000;
    REQUIRE(timer.schedule(TimedEvent{taskdist::detail::steady_ns() + an_hour, 1, far}));
    CHECK(timer.pending() == 1);
    CHECK(far.use_count() == 2);
    timer.stop();  // returns at once: it does not wait for the hour
    CHECK(timer.pending() == 0);
    CHECK(far.use_count() == 1);

    auto late = std::make_shared<int>(2);
    CHECK_FALSE(timer.schedule(TimedEvent{taskdist::detail::steady_ns(), 2, late}));
    CHECK(late.use_count() == 1);
    timer.stop();  // idempotent
    CHECK(fired.load() == 0);
}

TEST_CASE("TimerThread destroyed from inside its own firing: the thread ends without touching it", "[timer]") {
    // What a pool's supervisor does when a hook it runs ends up destroying
    // the pool: stop() on the timer's own thread detaches it. ASan would
    // report the thread reading the freed timer after the firing returned.
    using Timer = taskdist::detail::TimerThread<TimedEvent, std::function<void(TimedEvent&&)>>;
    std::unique_ptr<Timer> timer;
    std::promise<void> destroyed;
    std::latch scheduled{1};  // the firing waits until this thread is done with the timer
    auto owned = std::make_shared<int>(3);
    timer = std::make_unique<Timer>(
        [&](TimedEvent&&) {
            auto* signal = &destroyed;  // this closure dies with the timer
            scheduled.wait();
            timer.reset();  // runs stop() on this very thread
            signal->set_value();
        },
        "timer-test");
    REQUIRE(timer->schedule(TimedEvent{taskdist::detail::steady_ns(), 1, nullptr}));
    // Queued behind it and never fired: destroyed with the timer.
    REQUIRE(timer->schedule(TimedEvent{taskdist::detail::steady_ns() + 3'600'000'000'000, 2, owned}));
    scheduled.count_down();
    auto done = destroyed.get_future();
    REQUIRE(arrives(done));
    CHECK(timer == nullptr);
    CHECK(owned.use_count() == 1);
}
