// Tests of bounded queues: PoolOptions::queue_capacity and each overflow
// policy (block, reject, caller_runs, drop_oldest), under every distributor
// family, with the accounting identity checked after each.
//
// Synchronisation is explicit (gates, futures, the pool's own counters);
// `patience` only turns a hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

// A handler pool whose task 0 blocks its worker on a gate (and says when it
// started); every other task returns its input.
struct Held {
    Gate gate;
    std::promise<void> started;
    std::shared_future<void> started_f = started.get_future().share();

    auto handler() {
        return [this](int x) {
            if (x == 0) {
                started.set_value();
                gate.wait();
            }
            return x;
        };
    }
};

// Polls a condition the pool exposes no event for (how many producers are
// blocked); bounded by patience.
template <class Pred>
bool eventually(Pred pred) {
    const auto until = Clock::now() + patience;
    while (!pred()) {
        if (Clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

} // namespace

// ---- reject -------------------------------------------------------------------

TEST_CASE("reject: exactly queue_capacity tasks wait; the next submit throws QueueFull, try_submit is "
          "empty, try_post is false; nothing refused is counted as submitted") {
    Held held;
    taskdist::WorkerPool<int, int> pool(held.handler(),
                                        {.workers = 1, .queue_capacity = 3, .overflow = taskdist::Overflow::reject});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));  // popped: it holds no place any more

    std::vector<taskdist::TaskHandle<int>> queued;
    for (int i = 1; i <= 3; ++i) queued.push_back(pool.submit(i));
    CHECK_THROWS_AS(pool.submit(4), taskdist::QueueFull);
    CHECK_FALSE(pool.try_submit(5).has_value());
    CHECK_FALSE(pool.try_post(6));
    CHECK_THROWS_AS(pool.post(7), taskdist::QueueFull);

    auto s = pool.stats();
    CHECK(s.submitted == 4);
    CHECK(s.refused == 4);
    CHECK(s.queued == 3);
    check_balanced(s);

    held.gate.open();
    CHECK(await(running) == 0);
    for (int i = 1; i <= 3; ++i) CHECK(await(queued[static_cast<std::size_t>(i - 1)]) == i);
    pool.wait_idle();

    // Places come back as tasks start: the queue accepts again.
    auto again = pool.try_submit(8);
    REQUIRE(again.has_value());
    CHECK(await(*again) == 8);
    pool.wait_idle();
    s = pool.stats();
    CHECK(s.completed == 5);
    check_balanced(s);
}

TEST_CASE("reject under concurrent producers: every offer is either accepted and resolves, or refused; "
          "accepted + refused == offered") {
    constexpr int producers = 4;
    constexpr int per_producer = 3000;
    taskdist::WorkerPool<int, int> pool([](int x) { return x + 1; },
                                        {.workers = 2, .queue_capacity = 8, .overflow = taskdist::Overflow::reject});
    std::atomic<int> refused{0};
    std::vector<std::vector<taskdist::TaskHandle<int>>> handles(producers);
    std::vector<std::vector<int>> inputs(producers);
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 0; i < per_producer; ++i) {
                    const int x = p * per_producer + i;
                    auto h = pool.try_submit(x);
                    if (h) {
                        handles[static_cast<std::size_t>(p)].push_back(std::move(*h));
                        inputs[static_cast<std::size_t>(p)].push_back(x);
                    } else {
                        refused.fetch_add(1);
                    }
                }
            });
        }
    }
    std::size_t accepted = 0;
    bool all_right = true;
    for (std::size_t p = 0; p < producers; ++p) {
        for (std::size_t i = 0; i < handles[p].size(); ++i) {
            REQUIRE(handles[p][i].wait_for(patience));
            all_right = all_right && handles[p][i].get() == inputs[p][i] + 1;
            ++accepted;
        }
    }
    CHECK(all_right);
    CHECK(accepted + static_cast<std::size_t>(refused.load()) == std::size_t{producers} * per_producer);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.submitted == accepted);
    CHECK(s.refused == static_cast<std::uint64_t>(refused.load()));
    CHECK(s.completed == accepted);
    check_balanced(s);
}

TEST_CASE("the capacity covers every worker's queue together, under per-worker distributors too") {
    SECTION("RoundRobin") {
        Gate gate;
        std::promise<void> started[2];
        std::future<void> started_f[2] = {started[0].get_future(), started[1].get_future()};
        taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool(
            [&](int x) {
                if (x < 0) {
                    started[-x - 1].set_value();
                    gate.wait();
                }
                return x;
            },
            {.workers = 2, .queue_capacity = 4, .overflow = taskdist::Overflow::reject});
        auto opener = gate.open_on_exit();
        auto a = pool.submit(-1);
        auto b = pool.submit(-2);
        REQUIRE(arrives(started_f[0]));
        REQUIRE(arrives(started_f[1]));
        std::vector<taskdist::TaskHandle<int>> queued;
        for (int i = 1; i <= 4; ++i) queued.push_back(pool.submit(i));
        CHECK_FALSE(pool.try_submit(5).has_value());
        const auto s = pool.stats();
        CHECK(s.queued == 4);
        CHECK(s.per_worker[0].queued + s.per_worker[1].queued == 4);
        gate.open();
        for (int i = 1; i <= 4; ++i) CHECK(await(queued[static_cast<std::size_t>(i - 1)]) == i);
        CHECK(await(a) == -1);
        CHECK(await(b) == -2);
    }
    SECTION("Sticky, every task on one key") {
        Held held;
        taskdist::WorkerPool<int, int, taskdist::Sticky> pool(
            held.handler(), {.workers = 2, .queue_capacity = 2, .overflow = taskdist::Overflow::reject});
        auto opener = held.gate.open_on_exit();
        auto first = pool.submit(0, {.key = 7});
        REQUIRE(arrives(held.started_f));
        auto q1 = pool.submit(1, {.key = 7});
        auto q2 = pool.submit(2, {.key = 7});
        CHECK_THROWS_AS(pool.submit(3, {.key = 7}), taskdist::QueueFull);
        CHECK_THROWS_AS(pool.submit(4, {.key = 8}), taskdist::QueueFull);  // room is pool-wide, not per worker
        held.gate.open();
        CHECK(await(first) == 0);
        CHECK(await(q1) == 1);
        CHECK(await(q2) == 2);
    }
    SECTION("Priority") {
        Held held;
        taskdist::WorkerPool<int, int, taskdist::Priority> pool(
            held.handler(), {.workers = 1, .queue_capacity = 2, .overflow = taskdist::Overflow::reject});
        auto opener = held.gate.open_on_exit();
        auto first = pool.submit(0);
        REQUIRE(arrives(held.started_f));
        auto q1 = pool.submit(1, {.priority = 1});
        auto q2 = pool.submit(2, {.priority = 2});
        CHECK_THROWS_AS(pool.submit(3, {.priority = 100}), taskdist::QueueFull);
        held.gate.open();
        CHECK(await(q1) == 1);
        CHECK(await(q2) == 2);
        CHECK(await(first) == 0);
    }
}

TEST_CASE("a place comes back when a queued task is cancelled or expires in the queue") {
    Held held;
    taskdist::WorkerPool<int, int> pool(held.handler(),
                                        {.workers = 1, .queue_capacity = 1, .overflow = taskdist::Overflow::reject});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));

    auto cancelled = pool.submit(1);
    CHECK_FALSE(pool.try_submit(2).has_value());
    cancelled.cancel();
    CHECK(outcome_of(cancelled) == "TaskCancelled");

    auto expiring = pool.try_submit(3, {.deadline = Clock::now() + 5ms});
    REQUIRE(expiring.has_value());
    REQUIRE(expiring->wait_for(patience));
    CHECK(outcome_of(*expiring) == "TaskTimeout");

    auto last = pool.try_submit(4);
    REQUIRE(last.has_value());
    held.gate.open();
    CHECK(await(*last) == 4);
    CHECK(await(running) == 0);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.cancelled == 1);
    CHECK(s.timed_out == 1);
    CHECK(s.completed == 2);
    check_balanced(s);
}

// ---- block --------------------------------------------------------------------

TEST_CASE("block: a submit to a full queue waits for room and returns once a worker takes a task") {
    Held held;
    taskdist::WorkerPool<int, int> pool(held.handler(), {.workers = 1, .queue_capacity = 2});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));
    auto q1 = pool.submit(1);
    auto q2 = pool.submit(2);

    std::promise<taskdist::TaskHandle<int>> produced;
    auto produced_f = produced.get_future();
    std::jthread producer([&] { produced.set_value(pool.submit(3)); });

    REQUIRE(eventually([&] { return pool.stats().blocked == 1; }));
    CHECK(produced_f.wait_for(0s) == std::future_status::timeout);  // still blocked: no room yet
    CHECK(pool.stats().submitted == 3);

    held.gate.open();
    REQUIRE(arrives(produced_f));
    auto third = produced_f.get();
    CHECK(await(third) == 3);
    CHECK(await(q1) == 1);
    CHECK(await(q2) == 2);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.blocked == 0);
    CHECK(s.completed == 4);
    CHECK(s.refused == 0);
    check_balanced(s);
}

TEST_CASE("block with block_timeout: a submit that finds no room in time throws QueueFull, having waited") {
    constexpr auto block_timeout = 30ms;
    Held held;
    taskdist::WorkerPool<int, int> pool(held.handler(),
                                        {.workers = 1, .queue_capacity = 1, .block_timeout = block_timeout});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));
    auto queued = pool.submit(1);

    const auto t0 = Clock::now();
    CHECK_THROWS_AS(pool.submit(2), taskdist::QueueFull);
    CHECK(Clock::now() - t0 >= block_timeout);
    CHECK_FALSE(pool.try_submit(3).has_value());  // try_submit under block: empty where submit throws
    CHECK(pool.stats().refused == 2);
    held.gate.open();
    CHECK(await(queued) == 1);
}

TEST_CASE("block: shutting the pool down releases blocked producers with PoolClosed") {
    std::promise<void> started;
    auto started_f = started.get_future();
    taskdist::WorkerPool<int, int> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x == 0) {
                started.set_value();
                (void)wait_for_stop(ctx.stop_token(), patience);
            }
            return x;
        },
        {.workers = 1, .queue_capacity = 1});
    auto running = pool.submit(0);
    REQUIRE(arrives(started_f));
    auto queued = pool.submit(1);

    std::promise<std::string> outcome;
    auto outcome_f = outcome.get_future();
    std::jthread producer([&] {
        try {
            (void)pool.submit(2);
            outcome.set_value("accepted");
        } catch (const taskdist::PoolClosed&) {
            outcome.set_value("PoolClosed");
        } catch (...) {
            outcome.set_value("other");
        }
    });
    REQUIRE(eventually([&] { return pool.stats().blocked == 1; }));
    auto report = pool.shutdown_now();
    REQUIRE(arrives(outcome_f));
    CHECK(outcome_f.get() == "PoolClosed");
    CHECK(report.never_started == 1);
    CHECK(outcome_of(queued) == "TaskCancelled");
}

TEST_CASE("block: a task that would block on its own pool's full queue gets WouldDeadlock instead") {
    taskdist::ThreadPool pool({.workers = 1, .queue_capacity = 1});
    auto outer = pool.submit([&pool] {
        auto fits = pool.submit([] { return 1; });  // the running task left the queue: one place is free
        try {
            (void)pool.submit([] { return 2; });
            return std::string("accepted");
        } catch (const taskdist::WouldDeadlock&) {
            return std::string("WouldDeadlock");
        }
    });
    CHECK(await(outer) == "WouldDeadlock");
    pool.wait_idle();
    CHECK(pool.stats().completed == 2);
}

// ---- caller_runs -----------------------------------------------------------

TEST_CASE("caller_runs: a submit to a full queue runs the task on the submitting thread before returning") {
    Gate gate;
    std::promise<void> started;
    auto started_f = started.get_future();
    std::atomic<std::size_t> caller_index{0};
    std::atomic<bool> on_this_thread{false};
    const auto me = std::this_thread::get_id();
    taskdist::WorkerPool<int, int> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x == 0) {
                started.set_value();
                gate.wait();
            }
            if (x == 2) {
                caller_index = ctx.worker_index();
                on_this_thread = std::this_thread::get_id() == me;
            }
            if (x == 3) throw std::runtime_error("three");
            return x * 10;
        },
        {.workers = 1, .queue_capacity = 1, .overflow = taskdist::Overflow::caller_runs});
    auto opener = gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(started_f));
    auto queued = pool.submit(1);

    auto here = pool.submit(2);
    CHECK(here.ready());  // ran before submit() returned
    CHECK(here.get() == 20);
    CHECK(on_this_thread.load());
    CHECK(caller_index.load() == taskdist::TaskContext::on_caller);

    auto thrown = pool.submit(3);
    REQUIRE(thrown.ready());
    CHECK_THROWS_WITH(thrown.get(), "three");

    auto s = pool.stats();
    CHECK(s.ran_on_caller == 2);
    CHECK(s.submitted == 4);
    CHECK(s.completed == 1);
    CHECK(s.failed == 1);
    check_balanced(s);

    gate.open();
    CHECK(await(queued) == 10);
    pool.wait_idle();
    s = pool.stats();
    CHECK(s.completed == 3);
    check_balanced(s);
}

TEST_CASE("caller_runs: a task run on the submitting thread is reported to PoolObserver::on_submit like a queued one") {
    struct Submits final : taskdist::PoolObserver {
        std::atomic<int> count{0};
        void on_submit(const taskdist::TaskInfo&) override { count.fetch_add(1); }
    };
    auto obs = std::make_shared<Submits>();
    Gate gate;
    std::promise<void> started;
    auto started_f = started.get_future();
    taskdist::ThreadPool pool(
        {.workers = 1, .queue_capacity = 1, .overflow = taskdist::Overflow::caller_runs, .observer = obs});
    auto opener = gate.open_on_exit();
    auto running = pool.submit([&] {
        started.set_value();
        gate.wait();
    });
    REQUIRE(arrives(started_f));
    auto queued = pool.submit([] {});
    auto here = pool.submit([] {});
    REQUIRE(here.ready());  // ran on this thread
    CHECK(obs->count.load() == 3);
    gate.open();
    await(running);
    await(queued);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.ran_on_caller == 1);
    CHECK(s.submitted == 3);
}

TEST_CASE("caller_runs: a post()ed task that fails on the caller reaches on_error") {
    Held held;
    std::promise<std::string> reported;
    auto reported_f = reported.get_future();
    taskdist::WorkerPool<int, void> pool(
        [&held](int x) {
            if (x == 0) {
                held.started.set_value();
                held.gate.wait();
            }
            if (x == 2) throw std::runtime_error("posted and failed");
        },
        {.workers = 1,
         .on_error =
             [&reported](std::exception_ptr e) {
                 try {
                     std::rethrow_exception(e);
                 } catch (const std::exception& ex) {
                     reported.set_value(ex.what());
                 }
             },
         .queue_capacity = 1,
         .overflow = taskdist::Overflow::caller_runs});
    auto opener = held.gate.open_on_exit();
    pool.post(0);
    REQUIRE(arrives(held.started_f));
    pool.post(1);
    pool.post(2);  // full: runs here, throws, is reported
    REQUIRE(reported_f.wait_for(0s) == std::future_status::ready);
    CHECK(reported_f.get() == "posted and failed");
    held.gate.open();
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.failed == 1);
    CHECK(s.ran_on_caller == 1);
    check_balanced(s);
}

// ---- drop_oldest -----------------------------------------------------------

TEST_CASE("drop_oldest: the longest-queued task resolves TaskRejected and the new one takes its place") {
    Held held;
    taskdist::WorkerPool<int, int> pool(held.handler(), {.workers = 1,
                                                         .queue_capacity = 3,
                                                         .overflow = taskdist::Overflow::drop_oldest});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));
    auto a = pool.submit(1);
    auto b = pool.submit(2);
    auto c = pool.submit(3);
    CHECK_FALSE(a.ready());

    auto d = pool.submit(4);
    REQUIRE(a.ready());
    CHECK(outcome_of(a) == "TaskRejected");
    CHECK_FALSE(b.ready());
    auto e = pool.submit(5);
    REQUIRE(b.ready());
    CHECK(outcome_of(b) == "TaskRejected");

    auto s = pool.stats();
    CHECK(s.rejected == 2);
    CHECK(s.queued == 3);
    check_balanced(s);

    held.gate.open();
    CHECK(await(c) == 3);
    CHECK(await(d) == 4);
    CHECK(await(e) == 5);
    CHECK(await(running) == 0);
    pool.wait_idle();
    s = pool.stats();
    CHECK(s.completed == 4);
    CHECK(s.rejected == 2);
    check_balanced(s);
}

TEST_CASE("drop_oldest: a cancelled task is not a victim; a dropped post() reaches on_error") {
    Held held;
    std::atomic<int> rejected_reports{0};
    taskdist::WorkerPool<int, int> pool(
        held.handler(),
        {.workers = 1,
         .on_error =
             [&rejected_reports](std::exception_ptr e) {
                 try {
                     std::rethrow_exception(e);
                 } catch (const taskdist::TaskRejected&) {
                     rejected_reports.fetch_add(1);
                 } catch (...) {
                 }
             },
         .queue_capacity = 2,
         .overflow = taskdist::Overflow::drop_oldest});
    auto opener = held.gate.open_on_exit();
    auto running = pool.submit(0);
    REQUIRE(arrives(held.started_f));
    auto cancelled = pool.submit(1);
    pool.post(2);
    cancelled.cancel();  // frees its place
    auto kept = pool.submit(3);
    CHECK(rejected_reports.load() == 0);  // there was room: nothing dropped
    auto newest = pool.submit(4);          // full: the post()ed 2 is the oldest live one
    CHECK(rejected_reports.load() == 1);
    CHECK(outcome_of(cancelled) == "TaskCancelled");
    held.gate.open();
    CHECK(await(kept) == 3);
    CHECK(await(newest) == 4);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.rejected == 1);
    CHECK(s.cancelled == 1);
    check_balanced(s);
}

TEST_CASE("drop_oldest under concurrent producers: every handle resolves a value or TaskRejected, and the "
          "counts agree") {
    constexpr int producers = 4;
    constexpr int per_producer = 3000;
    taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool(
        [](int x) { return x + 1; },
        {.workers = 2, .queue_capacity = 4, .overflow = taskdist::Overflow::drop_oldest});
    std::vector<std::vector<taskdist::TaskHandle<int>>> handles(producers);
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 0; i < per_producer; ++i) handles[static_cast<std::size_t>(p)].push_back(pool.submit(p * per_producer + i));
            });
        }
    }
    std::uint64_t values = 0;
    std::uint64_t rejected = 0;
    std::uint64_t other = 0;
    for (std::size_t p = 0; p < producers; ++p) {
        for (std::size_t i = 0; i < handles[p].size(); ++i) {
            auto& h = handles[p][i];
            REQUIRE(h.wait_for(patience));
            try {
                if (h.get() == static_cast<int>(p * per_producer + i) + 1) {
                    ++values;
                } else {
                    ++other;
                }
            } catch (const taskdist::TaskRejected&) {
                ++rejected;
            } catch (...) {
                ++other;
            }
        }
    }
    CHECK(other == 0);
    CHECK(values + rejected == std::uint64_t{producers} * per_producer);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.rejected == rejected);
    CHECK(s.completed == values);
    CHECK(s.submitted == std::uint64_t{producers} * per_producer);
    check_balanced(s);
}

// ---- the same under ThreadPool, and bad settings ---------------------------

TEST_CASE("ThreadPool: try_submit and try_post honour the capacity too") {
    Gate gate;
    std::promise<void> started;
    auto started_f = started.get_future();
    taskdist::ThreadPool pool({.workers = 1, .queue_capacity = 1, .overflow = taskdist::Overflow::reject});
    auto opener = gate.open_on_exit();
    auto running = pool.submit([&] {
        started.set_value();
        gate.wait();
        return 1;
    });
    REQUIRE(arrives(started_f));
    REQUIRE(pool.try_post([] {}));
    CHECK_FALSE(pool.try_post([] {}));
    CHECK_FALSE(pool.try_submit([] { return 2; }).has_value());
    CHECK_THROWS_AS(pool.submit([] { return 3; }), taskdist::QueueFull);
    gate.open();
    CHECK(await(running) == 1);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.submitted == 2);
    CHECK(s.refused == 3);
}

TEST_CASE("bad capacity settings are rejected with std::invalid_argument") {
    auto id = [](int x) { return x; };
    using Pool = taskdist::WorkerPool<int, int>;
    CHECK_THROWS_AS(Pool(id, {.workers = 1, .queue_capacity = 4, .block_timeout = -1ms}), std::invalid_argument);
    CHECK_THROWS_AS(Pool(id, {.workers = 1, .queue_capacity = 4, .overflow = static_cast<taskdist::Overflow>(42)}),
                    std::invalid_argument);
    // The submitting thread has no per-worker state to run a task with.
    auto per = [] { return taskdist::per_worker([](std::size_t) { return 0; }, [](int& state, int x) { return state + x; }); };
    CHECK_THROWS_AS(Pool(per(), {.workers = 1, .queue_capacity = 4, .overflow = taskdist::Overflow::caller_runs}),
                    std::invalid_argument);
    // Unbounded: the overflow policy never applies, so any is accepted.
    CHECK_NOTHROW(Pool(per(), {.workers = 1, .overflow = taskdist::Overflow::caller_runs}));
}

TEST_CASE("block and caller_runs under concurrent producers: every offer is accepted and resolves its value") {
    constexpr int producers = 4;
    constexpr int per_producer = 3000;
    const auto overflow = GENERATE(taskdist::Overflow::block, taskdist::Overflow::caller_runs);
    INFO("overflow " << (overflow == taskdist::Overflow::block ? "block" : "caller_runs"));
    std::atomic<std::uint64_t> on_workers{0};
    taskdist::WorkerPool<int, int, taskdist::LeastBusy> pool(
        [&on_workers](int x, taskdist::TaskContext& ctx) {
            if (ctx.worker_index() != taskdist::TaskContext::on_caller) on_workers.fetch_add(1);
            return x + 1;
        },
        {.workers = 2, .queue_capacity = 4, .overflow = overflow});
    std::vector<std::vector<taskdist::TaskHandle<int>>> handles(producers);
    {
        std::vector<std::jthread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 0; i < per_producer; ++i) {
                    handles[static_cast<std::size_t>(p)].push_back(pool.submit(p * per_producer + i));
                }
            });
        }
    }
    bool all_right = true;
    for (std::size_t p = 0; p < producers; ++p) {
        for (std::size_t i = 0; i < handles[p].size(); ++i) {
            REQUIRE(handles[p][i].wait_for(patience));
            all_right = all_right && handles[p][i].get() == static_cast<int>(p * per_producer + i) + 1;
        }
    }
    CHECK(all_right);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.submitted == std::uint64_t{producers} * per_producer);
    CHECK(s.completed == s.submitted);
    CHECK(s.refused == 0);
    CHECK(s.blocked == 0);
    CHECK(on_workers.load() + s.ran_on_caller == s.submitted);
    if (overflow == taskdist::Overflow::block) CHECK(s.ran_on_caller == 0);
    check_balanced(s);
}
