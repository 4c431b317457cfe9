// Tests of the worker count: resize() at run time and a scaling pool's own
// growth under load and shrinking when idle, with no task lost.
//
// Synchronisation is explicit (gates, futures, observer events); `patience`
// only turns a hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

// Counts worker threads starting and stopping, and lets a test wait for a
// given number of either.
class WorkerEvents final : public taskdist::PoolObserver {
public:
    void on_worker_start(const taskdist::WorkerView&) override { bump(started_); }
    void on_worker_stop(const taskdist::WorkerView&) override { bump(stopped_); }

    bool wait_started(int n) { return wait(started_, n); }
    bool wait_stopped(int n) { return wait(stopped_, n); }

private:
    void bump(int& c) {
        {
            std::lock_guard lock(m_);
            ++c;
        }
        cv_.notify_all();
    }
    bool wait(int& c, int n) {
        std::unique_lock lock(m_);
        return cv_.wait_for(lock, patience, [&] { return c >= n; });
    }
    std::mutex m_;
    std::condition_variable cv_;
    int started_ = 0;
    int stopped_ = 0;
};

} // namespace

TEST_CASE("a scaling pool grows under a burst: tasks that can only finish together all start") {
    constexpr int together = 4;
    Gate gate;
    std::atomic<int> arrived{0};
    std::promise<void> all_arrived;
    auto all_arrived_f = all_arrived.get_future();
    auto events = std::make_shared<WorkerEvents>();
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (arrived.fetch_add(1) + 1 == together) all_arrived.set_value();
            gate.wait();
            return x;
        },
        {.workers = 1,
         .observer = events,
         .min_workers = 1,
         .max_workers = together,
         .scale_up_after = 2ms,
         .idle_timeout = 1h});
    auto opener = gate.open_on_exit();
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 0; i < together; ++i) handles.push_back(pool.submit(i));

    // With one worker only one task could ever be running: all four arriving
    // proves the pool grew to four.
    REQUIRE(arrives(all_arrived_f));
    CHECK(pool.size() == together);
    CHECK(pool.stats().workers == together);
    CHECK(events->wait_started(together));
    gate.open();
    for (int i = 0; i < together; ++i) CHECK(await(handles[static_cast<std::size_t>(i)]) == i);
    pool.wait_idle();
    check_balanced(pool.stats());
}

TEST_CASE("a scaling pool shrinks to min_workers after idle_timeout, and still serves afterwards") {
    auto events = std::make_shared<WorkerEvents>();
    taskdist::WorkerPool<int, int> pool([](int x) { return x * 2; }, {.workers = 4,
                                                                     .observer = events,
                                                                     .min_workers = 1,
                                                                     .max_workers = 4,
                                                                     .scale_up_after = 2ms,
                                                                     .idle_timeout = 10ms});
    REQUIRE(events->wait_started(4));
    REQUIRE(events->wait_stopped(3));  // three workers retire, one stays
    CHECK(pool.size() == 1);
    const auto s = pool.stats();
    CHECK(s.workers == 1);
    REQUIRE(s.per_worker.size() == 4);
    CHECK(s.per_worker[0].active);
    CHECK_FALSE(s.per_worker[3].active);
    auto h = pool.submit(21);
    CHECK(await(h) == 42);
}

TEST_CASE("resize() while producers submit: no task is lost or run twice, under per-worker and shared queues") {
    constexpr int producers = 3;
    constexpr int per_producer = 4000;
    auto run = [&](auto& pool) {
        std::atomic<bool> done{false};
        std::vector<std::vector<taskdist::TaskHandle<int>>> handles(producers);
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 0; i < per_producer; ++i) {
                    handles[static_cast<std::size_t>(p)].push_back(
                        pool.submit(p * per_producer + i, {.key = static_cast<std::uint64_t>(i)}));
                }
            });
        }
        std::jthread resizer([&] {
            const std::size_t sizes[] = {1, 4, 2, 3, 1, 4, 2};
            for (std::size_t k = 0; !done.load(); k = (k + 1) % 7) pool.resize(sizes[k]);
        });
        threads.clear();  // joins the producers
        done = true;
        resizer.join();
        bool all_right = true;
        for (std::size_t p = 0; p < producers; ++p) {
            for (std::size_t i = 0; i < handles[p].size(); ++i) {
                REQUIRE(handles[p][i].wait_for(patience));
                all_right = all_right && handles[p][i].get() == static_cast<int>(p * per_producer + i);
            }
        }
        CHECK(all_right);
        pool.wait_idle();
        const auto s = pool.stats();
        CHECK(s.submitted == std::uint64_t{producers} * per_producer);
        CHECK(s.completed == s.submitted);
        check_balanced(s);
    };
    const taskdist::PoolOptions opts{.workers = 2, .max_workers = 4};
    SECTION("RoundRobin") {
        taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool([](int x) { return x; }, opts);
        run(pool);
    }
    SECTION("Sticky") {
        taskdist::WorkerPool<int, int, taskdist::Sticky> pool([](int x) { return x; }, opts);
        run(pool);
    }
    SECTION("LeastBusy") {
        taskdist::WorkerPool<int, int, taskdist::LeastBusy> pool([](int x) { return x; }, opts);
        run(pool);
    }
    SECTION("SharedQueue") {
        taskdist::WorkerPool<int, int> pool([](int x) { return x; }, opts);
        run(pool);
    }
}

TEST_CASE("shrinking hands a retiring worker's queued tasks to the workers that stay") {
    Gate gate0, gate1;
    std::promise<void> started0, started1;
    auto started0_f = started0.get_future();
    auto started1_f = started1.get_future();
    taskdist::WorkerPool<int, std::size_t, taskdist::RoundRobin> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x == -1) {
                started0.set_value();
                gate0.wait();
            } else if (x == -2) {
                started1.set_value();
                gate1.wait();
            }
            return ctx.worker_index();
        },
        {.workers = 2});
    auto opener0 = gate0.open_on_exit();
    auto opener1 = gate1.open_on_exit();
    auto h0 = pool.submit(-1);  // worker 0
    auto h1 = pool.submit(-2);  // worker 1
    REQUIRE(arrives(started0_f));
    REQUIRE(arrives(started1_f));
    std::vector<taskdist::TaskHandle<std::size_t>> queued;
    for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(i));
    CHECK(pool.stats().per_worker[1].queued == 5);

    pool.resize(1);
    CHECK(pool.size() == 1);
    gate1.open();  // worker 1 finishes its task, then leaves and hands its queue on
    CHECK(await(h1) == 1);
    gate0.open();
    CHECK(await(h0) == 0);
    int on_worker0 = 0;
    for (auto& h : queued) on_worker0 += await(h) == 0 ? 1 : 0;
    CHECK(on_worker0 == 10);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.completed == 12);
    check_balanced(s);
}

TEST_CASE("Sticky: shrinking moves only the keys of the worker that left; growing back restores them") {
    constexpr int keys = 200;
    taskdist::WorkerPool<int, std::size_t, taskdist::Sticky> pool(
        [](int, taskdist::TaskContext& ctx) { return ctx.worker_index(); }, {.workers = 4});
    auto owners = [&] {
        std::vector<taskdist::TaskHandle<std::size_t>> hs;
        for (int k = 0; k < keys; ++k) hs.push_back(pool.submit(k, {.key = static_cast<std::uint64_t>(k)}));
        std::vector<std::size_t> out;
        for (auto& h : hs) out.push_back(await(h));
        return out;
    };
    const auto before = owners();
    pool.resize(3);
    const auto after = owners();
    int moved_wrongly = 0, moved_off_3 = 0, on_3 = 0;
    for (int k = 0; k < keys; ++k) {
        const auto b = before[static_cast<std::size_t>(k)], a = after[static_cast<std::size_t>(k)];
        if (b == 3) {
            ++on_3;
            moved_off_3 += a != 3 ? 1 : 0;
        } else {
            moved_wrongly += a != b ? 1 : 0;
        }
    }
    CHECK(on_3 > 0);
    CHECK(moved_off_3 == on_3);
    CHECK(moved_wrongly == 0);
    pool.resize(4);
    CHECK(owners() == before);
}

TEST_CASE("resize() and scaling settings out of range are rejected with clear errors") {
    auto id = [](int x) { return x; };
    using Pool = taskdist::WorkerPool<int, int>;
    Pool pool(id, {.workers = 2, .max_workers = 3});
    CHECK_THROWS_AS(pool.resize(0), std::invalid_argument);
    CHECK_THROWS_AS(pool.resize(4), std::invalid_argument);
    CHECK_NOTHROW(pool.resize(3));
    CHECK(pool.size() == 3);
    pool.shutdown();
    CHECK_THROWS_AS(pool.resize(2), taskdist::PoolClosed);

    CHECK_THROWS_AS(Pool(id, {.workers = 4, .max_workers = 2}), std::invalid_argument);
    CHECK_THROWS_AS(Pool(id, {.workers = 2, .min_workers = 3}), std::invalid_argument);
    CHECK_THROWS_AS(Pool(id, {.workers = 2, .min_workers = 1, .max_workers = 4, .scale_up_after = 0ms}),
                    std::invalid_argument);
}
