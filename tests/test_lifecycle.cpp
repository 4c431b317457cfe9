// Tests of the pool's lifecycle: shutdown_now() and its accounting, pausing
// and resuming dispatch, and observers.
//
// Synchronisation is explicit (gates, futures, the pool's own callbacks);
// `patience` only turns a hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

} // namespace

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
