// Tests of the pools themselves (WorkerPool and ThreadPool): exactly-once
// resolution under concurrent producers, failures of posted tasks,
// wait_idle(), shutdown and destruction, construction errors, TaskContext,
// calls that would deadlock, and worker thread names.
//
// Synchronisation is explicit: a task that must not finish yet blocks on a
// Gate the test opens, and the test learns that tasks started from latches
// and futures. Timeouts (`patience`) only turn a hang into a failure; no
// test sleeps to let something happen. Workers never assert: they count or
// return what they saw, and the test thread checks it afterwards.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <future>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace {

using namespace test_support;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// 4 producers: 100,000 tasks. Fast enough under ThreadSanitizer too (about
// a second), so the size is the same in every build.
constexpr std::size_t exactly_once_per_producer = 25'000;

// The value task `id` must produce: distinct for every id, and not the id
// itself, so a handle given another task's value or a default value shows.
constexpr std::uint64_t value_of(std::uint64_t id) { return id * 0x9E3779B97F4A7C15ull + 12345; }

// Runs `submit_one(id)` for ids p*per_producer .. (p+1)*per_producer-1 on each
// of `producers` threads at once, keeping the handles by id. Returns how many
// submit calls threw.
template <class Handle, class SubmitOne>
std::size_t submit_from_producers(std::size_t producers, std::size_t per_producer, std::vector<Handle>& handles,
                                  SubmitOne submit_one) {
    handles.resize(producers * per_producer);
    std::atomic<std::size_t> errors{0};
    std::latch go(1);
    {
        std::vector<std::jthread> threads;
        for (std::size_t p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                go.wait();
                for (std::size_t i = 0; i < per_producer; ++i) {
                    const std::size_t id = p * per_producer + i;
                    try {
                        handles[id] = submit_one(static_cast<std::uint32_t>(id));
                    } catch (...) {
                        errors.fetch_add(1);
                    }
                }
            });
        }
        go.count_down();
    }  // joins the producers
    return errors.load();
}

// Checks that every handle yields its own task's value and every task ran once.
void check_each_once(std::vector<taskdist::TaskHandle<std::uint64_t>>& handles,
                     const std::vector<std::atomic<std::uint32_t>>& runs) {
    std::size_t wrong_values = 0, not_once = 0;
    std::optional<std::size_t> first_wrong, first_not_once;
    std::uint64_t first_wrong_seen = 0;
    for (std::size_t id = 0; id < handles.size(); ++id) {
        if (!handles[id].valid() || !handles[id].wait_for(patience)) {
            ++wrong_values;
            if (!first_wrong) first_wrong = id;
            continue;
        }
        const std::uint64_t seen = handles[id].get();
        if (seen != value_of(id)) {
            ++wrong_values;
            if (!first_wrong) {
                first_wrong = id;
                first_wrong_seen = seen;
            }
        }
        if (runs[id].load() != 1) {
            ++not_once;
            if (!first_not_once) first_not_once = id;
        }
    }
    const auto wrong_id = first_wrong.value_or(0);
    INFO("first handle with a wrong (or no) value: task " << wrong_id << ", expected " << value_of(wrong_id)
                                                          << ", saw " << first_wrong_seen);
    CHECK(wrong_values == 0);
    const auto once_id = first_not_once.value_or(0);
    INFO("first task not run exactly once: task " << once_id << ", ran " << runs[once_id].load() << " times");
    CHECK(not_once == 0);
}

// The name of the calling thread, as the OS reports it.
std::string current_thread_name() {
#if defined(__linux__)
    char buf[64] = {};
    if (pthread_getname_np(pthread_self(), buf, sizeof buf) != 0) return "<pthread_getname_np failed>";
    return buf;
#else
    return {};
#endif
}

} // namespace

// ---- exactly once ------------------------------------------------------------

TEST_CASE("a WorkerPool with the default SharedQueue resolves every task from 4 producers exactly once, "
          "each handle with its own task's value") {
    constexpr std::size_t producers = 4;
    const std::size_t total = producers * exactly_once_per_producer;
    std::vector<std::atomic<std::uint32_t>> runs(total);
    taskdist::WorkerPool<std::uint32_t, std::uint64_t> pool(
        [&runs](std::uint32_t id) {
            runs[id].fetch_add(1, std::memory_order_relaxed);
            return value_of(id);
        },
        {.workers = 4});
    static_assert(std::is_same_v<decltype(pool)::distributor_type, taskdist::SharedQueue>);

    std::vector<taskdist::TaskHandle<std::uint64_t>> handles;
    const std::size_t errors = submit_from_producers(producers, exactly_once_per_producer, handles,
                                                     [&pool](std::uint32_t id) { return pool.submit(id); });
    REQUIRE(errors == 0);
    pool.wait_idle();
    const taskdist::PoolStats stats = pool.stats();
    CHECK(stats.submitted == total);
    CHECK(stats.completed == total);
    CHECK(stats.failed == 0);
    check_each_once(handles, runs);
}

TEST_CASE("a ThreadPool resolves every callable from 4 producers exactly once, each handle with its own value") {
    constexpr std::size_t producers = 4;
    const std::size_t total = producers * exactly_once_per_producer;
    std::vector<std::atomic<std::uint32_t>> runs(total);
    taskdist::ThreadPool pool({.workers = 4});

    std::vector<taskdist::TaskHandle<std::uint64_t>> handles;
    const std::size_t errors =
        submit_from_producers(producers, exactly_once_per_producer, handles, [&pool, &runs](std::uint32_t id) {
            return pool.submit([&runs, id] {
                runs[id].fetch_add(1, std::memory_order_relaxed);
                return value_of(id);
            });
        });
    REQUIRE(errors == 0);
    pool.wait_idle();
    const taskdist::PoolStats stats = pool.stats();
    CHECK(stats.submitted == total);
    CHECK(stats.completed == total);
    check_each_once(handles, runs);
}

// ---- failures of posted tasks ---------------------------------------------------

TEST_CASE("post() failures are counted in stats().failed and each is passed once to on_error") {
    constexpr int tasks = 3000;
    std::mutex seen_mutex;
    std::vector<std::string> seen;  // messages on_error received, in any order
    std::atomic<int> non_std{0};
    taskdist::WorkerPool<int, int> pool(
        [](int id) {
            if (id % 3 == 0) throw std::runtime_error("task " + std::to_string(id));
            return id;
        },
        {.workers = 4, .on_error = [&](std::exception_ptr e) {
             try {
                 std::rethrow_exception(e);
             } catch (const std::runtime_error& ex) {
                 std::lock_guard lock(seen_mutex);
                 seen.emplace_back(ex.what());
             } catch (...) {
                 non_std.fetch_add(1);
             }
         }});

    for (int id = 0; id < tasks; ++id) pool.post(id);
    pool.wait_idle();  // covers on_error: it runs before its task is counted

    const int expected_failures = tasks / 3;
    const taskdist::PoolStats stats = pool.stats();
    CHECK(stats.submitted == static_cast<std::uint64_t>(tasks));
    CHECK(stats.failed == static_cast<std::uint64_t>(expected_failures));
    CHECK(stats.completed == static_cast<std::uint64_t>(tasks - expected_failures));
    CHECK(non_std.load() == 0);

    std::vector<std::string> expected;
    for (int id = 0; id < tasks; id += 3) expected.push_back("task " + std::to_string(id));
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> got;
    {
        std::lock_guard lock(seen_mutex);
        got = seen;
    }
    std::sort(got.begin(), got.end());
    CAPTURE(got.size(), expected.size());
    CHECK(got == expected);
}

TEST_CASE("a submitted task's exception goes to its handle and stats().failed, not to on_error") {
    std::atomic<int> on_error_calls{0};
    taskdist::WorkerPool<int, int> pool(
        [](int id) -> int { throw std::runtime_error("submitted " + std::to_string(id)); },
        {.workers = 2, .on_error = [&](std::exception_ptr) { on_error_calls.fetch_add(1); }});
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 0; i < 20; ++i) handles.push_back(pool.submit(i));
    pool.wait_idle();
    std::size_t threw = 0;
    for (auto& h : handles) {
        try {
            (void)h.get();
        } catch (const std::runtime_error&) {
            ++threw;
        }
    }
    CHECK(threw == 20);
    CHECK(pool.stats().failed == 20);
    CHECK(on_error_calls.load() == 0);
}

TEST_CASE("an on_error that itself throws neither crashes the pool nor loses the count") {
    std::atomic<int> calls{0};
    taskdist::ThreadPool pool({.workers = 2, .on_error = [&](std::exception_ptr) {
                                   const int n = calls.fetch_add(1);
                                   if (n % 2 == 0) throw std::logic_error("on_error fails too");
                                   throw int{n};  // and not always with a std::exception
                               }});
    constexpr int tasks = 10;
    for (int i = 0; i < tasks; ++i) pool.post([] { throw std::runtime_error("posted task fails"); });
    pool.wait_idle();
    CHECK(calls.load() == tasks);
    CHECK(pool.stats().failed == static_cast<std::uint64_t>(tasks));

    // The workers survived: the pool still runs tasks.
    auto h = pool.submit([] { return 5; });
    CHECK(await(h) == 5);
    CHECK(pool.stats().completed == 1);
}

TEST_CASE("a posted failure with no on_error is reported (to stderr) and counted, and the pool goes on") {
    taskdist::ThreadPool pool({.workers = 1});
    pool.post([] { throw std::runtime_error("expected test output: a posted task failed on purpose"); });
    pool.post([] { throw 7; });
    pool.wait_idle();
    CHECK(pool.stats().failed == 2);
    auto h = pool.submit([] { return 1; });
    CHECK(await(h) == 1);
}

// ---- wait_idle --------------------------------------------------------------------

TEST_CASE("wait_idle() waits for every task submitted before it, including ones held on a latch "
          "that another thread releases") {
    constexpr std::size_t workers = 4;
    constexpr int held = 4;  // one per worker
    constexpr int quick = 500;
    Gate gate;
    std::latch all_held(held);
    std::atomic<int> finished{0};
    taskdist::WorkerPool<int, int> pool(
        [&](int id) {
            if (id < held) {
                all_held.count_down();
                gate.wait();
            }
            finished.fetch_add(1);
            return id;
        },
        {.workers = workers});
    const auto open = gate.open_on_exit();

    for (int id = 0; id < held + quick; ++id) pool.post(id);

    // The releaser opens the gate once every worker is held; whether that
    // happens before or after wait_idle() parks, wait_idle() may only
    // return once all tasks have finished.
    std::atomic<bool> saw_all_held{false};
    std::jthread releaser([&] {
        // Bounded, so that a pool that never starts the held tasks fails
        // the test below instead of hanging it.
        for (const Clock::time_point give_up = Clock::now() + patience; Clock::now() < give_up;) {
            if (all_held.try_wait()) {
                saw_all_held.store(true);
                break;
            }
            std::this_thread::yield();
        }
        gate.open();
    });
    pool.wait_idle();
    CHECK(saw_all_held.load());
    const int seen = finished.load();
    CAPTURE(seen);
    CHECK(seen == held + quick);
    const taskdist::PoolStats stats = pool.stats();
    CHECK(stats.queued == 0);
    CHECK(stats.running == 0);
    CHECK(stats.completed == static_cast<std::uint64_t>(held + quick));
}

TEST_CASE("wait_idle() on another thread does not return while a task is held, and returns once released") {
    Gate gate;
    std::promise<void> started;
    std::atomic<int> finished{0};
    taskdist::WorkerPool<int, int> pool(
        [&](int id) {
            if (id == 0) {
                started.set_value();
                gate.wait();
            }
            finished.fetch_add(1);
            return id;
        },
        {.workers = 2});
    const auto open = gate.open_on_exit();
    for (int id = 0; id < 50; ++id) pool.post(id);
    auto started_future = started.get_future();
    REQUIRE(arrives(started_future));

    std::promise<int> idle;  // the count of finished tasks wait_idle() returned with
    auto idle_future = idle.get_future();
    std::jthread waiter([&] {
        pool.wait_idle();
        idle.set_value(finished.load());
    });
    // Not a sleep to let something happen: a correct pool never returns
    // here however long we look; 50 ms just bounds how long we look.
    const bool returned_early = idle_future.wait_for(50ms) == std::future_status::ready;
    CHECK_FALSE(returned_early);

    gate.open();
    REQUIRE(arrives(idle_future));
    CHECK(idle_future.get() == 50);
}

TEST_CASE("wait_idle() on an idle or fresh pool returns at once") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = 2});
    pool.wait_idle();
    auto h = pool.submit(1);
    pool.wait_idle();
    CHECK(h.ready());  // wait_idle() covers the handle's publication
    pool.wait_idle();
    CHECK(h.get() == 1);
}

// ---- shutdown and destruction ------------------------------------------------------

TEST_CASE("shutdown() from another thread drains the queue: every task queued behind a held worker "
          "still gets its value") {
    constexpr int tasks = 1000;
    Gate gate;
    std::promise<void> started;
    taskdist::WorkerPool<int, std::uint64_t> pool(
        [&](int id) {
            if (id == 0) {
                started.set_value();
                gate.wait();
            }
            return value_of(static_cast<std::uint64_t>(id));
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();

    std::vector<taskdist::TaskHandle<std::uint64_t>> handles;
    handles.push_back(pool.submit(0));
    auto started_future = started.get_future();
    REQUIRE(arrives(started_future));
    for (int id = 1; id < tasks; ++id) handles.push_back(pool.submit(id));

    auto shut = std::async(std::launch::async, [&pool] { pool.shutdown(); });
    // If a REQUIRE below fails, open the gate before `shut`'s destructor
    // waits for the shutdown (which waits for the held worker).
    const auto open_before_join = gate.open_on_exit();

    // Wait until the shutdown has closed the pool (it refuses new tasks)
    // before releasing the held worker: the queued tasks must survive that.
    bool closed = false;
    std::size_t probes_accepted = 0;
    for (const Clock::time_point give_up = Clock::now() + patience; Clock::now() < give_up;) {
        try {
            pool.post(-1);
            ++probes_accepted;
        } catch (const taskdist::PoolClosed&) {
            closed = true;
            break;
        }
        std::this_thread::yield();
    }
    REQUIRE(closed);
    CHECK(shut.wait_for(0s) == std::future_status::timeout);  // it waits for the held worker

    gate.open();
    REQUIRE(shut.wait_for(patience) == std::future_status::ready);
    shut.get();

    std::size_t not_ready = 0, wrong = 0;
    for (std::size_t id = 0; id < handles.size(); ++id) {
        if (!handles[id].ready()) {  // shutdown() joined the workers: no waiting needed
            ++not_ready;
            continue;
        }
        if (handles[id].get() != value_of(id)) ++wrong;
    }
    CHECK(not_ready == 0);
    CHECK(wrong == 0);
    const taskdist::PoolStats stats = pool.stats();
    CAPTURE(probes_accepted);
    CHECK(stats.completed == tasks + probes_accepted);
    CHECK(stats.queued == 0);
    CHECK(stats.running == 0);
}

TEST_CASE("destroying a pool without shutdown() drains its queue too") {
    constexpr int tasks = 1000;
    Gate gate;
    std::promise<void> started;
    std::atomic<int> ran{0};
    auto pool = std::make_unique<taskdist::WorkerPool<int, int>>(
        [&](int id) {
            if (id == 0) {
                started.set_value();
                gate.wait();
            }
            ran.fetch_add(1);
            return id * 2;
        },
        taskdist::PoolOptions{.workers = 1});
    const auto open = gate.open_on_exit();

    std::vector<taskdist::TaskHandle<int>> handles;
    handles.push_back(pool->submit(0));
    auto started_future = started.get_future();
    REQUIRE(arrives(started_future));
    for (int id = 1; id < tasks; ++id) handles.push_back(pool->submit(id));

    // The gate opens from another thread as the destructor starts; the
    // destructor must then finish all ~1000 queued tasks before it returns.
    std::latch destroying(1);
    std::jthread releaser([&] {
        destroying.wait();
        gate.open();
    });
    destroying.count_down();
    pool.reset();

    CHECK(ran.load() == tasks);
    std::size_t not_ready = 0, wrong = 0;
    for (std::size_t id = 0; id < handles.size(); ++id) {
        if (!handles[id].ready()) {
            ++not_ready;
            continue;
        }
        if (handles[id].get() != static_cast<int>(id) * 2) ++wrong;
    }
    CHECK(not_ready == 0);
    CHECK(wrong == 0);
}

TEST_CASE("submit() and post() after shutdown() throw PoolClosed, a taskdist::Error and std::runtime_error, "
          "and do not run the task") {
    static_assert(std::is_base_of_v<taskdist::Error, taskdist::PoolClosed>);
    static_assert(std::is_base_of_v<std::runtime_error, taskdist::PoolClosed>);
    static_assert(std::is_base_of_v<std::runtime_error, taskdist::Error>);

    std::atomic<int> ran{0};
    SECTION("WorkerPool") {
        taskdist::WorkerPool<int, int> pool(
            [&ran](int x) {
                ran.fetch_add(1);
                return x;
            },
            {.workers = 2});
        auto before = pool.submit(1);
        pool.shutdown();
        CHECK(before.ready());
        CHECK_THROWS_AS(pool.submit(2), taskdist::PoolClosed);
        CHECK_THROWS_AS(pool.post(3), taskdist::PoolClosed);
        CHECK_THROWS_AS(pool.submit(4), taskdist::Error);
        CHECK_THROWS_AS(pool.post(5), std::runtime_error);
        CHECK(ran.load() == 1);
        const taskdist::PoolStats stats = pool.stats();
        INFO("rejected tasks must not count as submitted");
        CHECK(stats.submitted == 1);
        CHECK(stats.completed == 1);
        CHECK(stats.queued == 0);
    }
    SECTION("ThreadPool") {
        taskdist::ThreadPool pool({.workers = 2});
        pool.shutdown();
        CHECK_THROWS_AS(pool.submit([&ran] { return ran.fetch_add(1); }), taskdist::PoolClosed);
        CHECK_THROWS_AS(pool.post([&ran] { ran.fetch_add(1); }), taskdist::PoolClosed);
        CHECK_THROWS_AS(pool.post([&ran](taskdist::TaskContext&) { ran.fetch_add(1); }), taskdist::PoolClosed);
        CHECK(ran.load() == 0);
        CHECK(pool.stats().submitted == 0);
        pool.wait_idle();  // nothing outstanding: returns at once
    }
    SECTION("the message says why") {
        taskdist::ThreadPool pool({.workers = 1});
        pool.shutdown();
        std::string message;
        try {
            pool.post([] {});
        } catch (const taskdist::Error& e) {
            message = e.what();
        }
        CAPTURE(message);
        CHECK(message.find("shut down") != std::string::npos);
    }
}

TEST_CASE("shutdown() is idempotent and safe from two threads at once") {
    constexpr int tasks = 200;
    Gate gate;
    std::promise<void> started;
    std::atomic<int> ran{0};
    taskdist::WorkerPool<int, int> pool(
        [&](int id) {
            if (id == 0) {
                started.set_value();
                gate.wait();
            }
            ran.fetch_add(1);
            return id;
        },
        {.workers = 2});
    const auto open = gate.open_on_exit();
    for (int id = 0; id < tasks; ++id) pool.post(id);
    auto started_future = started.get_future();
    REQUIRE(arrives(started_future));

    std::latch go(1);
    auto a = std::async(std::launch::async, [&] {
        go.wait();
        pool.shutdown();
    });
    auto b = std::async(std::launch::async, [&] {
        go.wait();
        pool.shutdown();
    });
    go.count_down();
    gate.open();
    REQUIRE(a.wait_for(patience) == std::future_status::ready);
    REQUIRE(b.wait_for(patience) == std::future_status::ready);
    CHECK_NOTHROW(a.get());
    CHECK_NOTHROW(b.get());
    CHECK(ran.load() == tasks);
    CHECK_NOTHROW(pool.shutdown());  // a third time, after the fact
    CHECK(pool.stats().completed == static_cast<std::uint64_t>(tasks));
}

// ---- construction ------------------------------------------------------------------

TEST_CASE("a pool with 0 workers is rejected with std::invalid_argument") {
    CHECK_THROWS_AS((taskdist::WorkerPool<int, int>([](int x) { return x; }, {.workers = 0})),
                    std::invalid_argument);
    CHECK_THROWS_AS(taskdist::ThreadPool({.workers = 0}), std::invalid_argument);
    CHECK_THROWS_AS((taskdist::WorkerPool<int, int, taskdist::RoundRobin>([](int x) { return x; }, {.workers = 0})),
                    std::invalid_argument);
}

TEST_CASE("size() and stats().workers equal the number of workers asked for") {
    for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
        taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = n});
        taskdist::ThreadPool tp({.workers = n});
        CAPTURE(n);
        CHECK(pool.size() == n);
        CHECK(tp.size() == n);
        const taskdist::PoolStats stats = pool.stats();
        CHECK(stats.workers == n);
        CHECK(stats.per_worker.size() == n);
    }
    taskdist::ThreadPool defaulted;
    CHECK(defaulted.size() == taskdist::default_worker_count());
    CHECK(defaulted.size() >= 1);
}

// ---- TaskContext ---------------------------------------------------------------------

TEST_CASE("TaskContext gives a worker_index in [0, n), attempt() 1 and no stop request") {
    constexpr std::size_t n = 3;
    struct Seen {
        std::size_t worker;
        unsigned attempt;
        bool stop_requested;
        bool token_stop_requested;
    };
    taskdist::WorkerPool<int, Seen> pool(
        [](int, taskdist::TaskContext& ctx) {
            return Seen{ctx.worker_index(), ctx.attempt(), ctx.stop_requested(), ctx.stop_token().stop_requested()};
        },
        {.workers = n});
    std::vector<taskdist::TaskHandle<Seen>> handles;
    for (int i = 0; i < 300; ++i) handles.push_back(pool.submit(i));
    for (auto& h : handles) {
        const Seen s = await(h);
        CAPTURE(s.worker, s.attempt, s.stop_requested, s.token_stop_requested);
        REQUIRE(s.worker < n);
        REQUIRE(s.attempt == 1u);
        REQUIRE_FALSE(s.stop_requested);
        REQUIRE_FALSE(s.token_stop_requested);
    }
}

TEST_CASE("n tasks that must all run at once see the n distinct worker indices 0..n-1") {
    constexpr std::size_t n = 4;
    // Each task waits until all n have arrived, so each needs its own worker.
    std::latch together(static_cast<std::ptrdiff_t>(n));
    taskdist::ThreadPool pool({.workers = n});
    std::vector<taskdist::TaskHandle<std::size_t>> handles;
    for (std::size_t i = 0; i < n; ++i) {
        handles.push_back(pool.submit([&together](taskdist::TaskContext& ctx) {
            together.arrive_and_wait();
            return ctx.worker_index();
        }));
    }
    std::set<std::size_t> indices;
    for (auto& h : handles) indices.insert(await(h));
    const std::set<std::size_t> expected = {0, 1, 2, 3};
    CHECK(indices == expected);
}

// ---- calls that would deadlock -----------------------------------------------------

TEST_CASE("wait_idle() and shutdown() from inside a task throw WouldDeadlock into that task's handle") {
    static_assert(std::is_base_of_v<taskdist::Error, taskdist::WouldDeadlock>);
    SECTION("WorkerPool") {
        taskdist::WorkerPool<int, int>* self = nullptr;  // set before the first submit
        taskdist::WorkerPool<int, int> pool(
            [&self](int what) {
                if (what == 0) self->wait_idle();
                if (what == 1) self->shutdown();
                return what;
            },
            {.workers = 2});
        self = &pool;
        auto idle = pool.submit(0);
        auto shut = pool.submit(1);
        REQUIRE(idle.wait_for(patience));
        REQUIRE(shut.wait_for(patience));
        CHECK_THROWS_AS(idle.get(), taskdist::WouldDeadlock);
        CHECK_THROWS_AS(shut.get(), taskdist::WouldDeadlock);
        INFO("the refused shutdown() must not have closed the pool");
        auto after = pool.submit(2);
        CHECK(await(after) == 2);
        CHECK(pool.stats().failed == 2);
    }
    SECTION("ThreadPool") {
        taskdist::ThreadPool pool({.workers = 1});
        auto idle = pool.submit([&pool] { pool.wait_idle(); });
        auto shut = pool.submit([&pool] { pool.shutdown(); });
        REQUIRE(idle.wait_for(patience));
        REQUIRE(shut.wait_for(patience));
        CHECK_THROWS_AS(idle.get(), taskdist::WouldDeadlock);
        CHECK_THROWS_AS(shut.get(), taskdist::WouldDeadlock);
        auto after = pool.submit([] { return 3; });
        CHECK(await(after) == 3);
    }
    SECTION("a task of one pool may wait for another pool") {
        taskdist::ThreadPool inner({.workers = 1});
        taskdist::ThreadPool outer({.workers = 1});
        auto h = outer.submit([&inner] {
            auto sub = inner.submit([] { return 6; });
            inner.wait_idle();
            return sub.get();
        });
        CHECK(await(h) == 6);
    }
}

// ---- ThreadPool callables ------------------------------------------------------------

TEST_CASE("ThreadPool runs submit() and post() callables with and without a TaskContext&") {
    constexpr std::size_t n = 2;
    taskdist::ThreadPool pool({.workers = n});
    std::atomic<int> plain_posts{0};
    std::atomic<int> ctx_posts{0};
    std::atomic<int> bad_ctx_index{0};

    auto plain = pool.submit([] { return std::string("plain"); });
    auto with_ctx = pool.submit([](taskdist::TaskContext& ctx) { return ctx.worker_index(); });
    static_assert(std::is_same_v<decltype(plain), taskdist::TaskHandle<std::string>>);
    static_assert(std::is_same_v<decltype(with_ctx), taskdist::TaskHandle<std::size_t>>);
    for (int i = 0; i < 100; ++i) {
        pool.post([&plain_posts] { plain_posts.fetch_add(1); });
        pool.post([&](taskdist::TaskContext& ctx) {
            if (ctx.worker_index() >= n) bad_ctx_index.fetch_add(1);
            ctx_posts.fetch_add(1);
        });
    }
    // A callable too big for the inline buffer goes through the heap path.
    std::array<std::uint64_t, 32> big{};
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = i;
    auto heap = pool.submit([big] {
        std::uint64_t s = 0;
        for (auto v : big) s += v;
        return s;
    });
    // So does one aligned more strictly than the buffer (8 bytes), small as
    // it is; it must still be called at its own alignment. Where a misplaced
    // one would land depends on the frame it runs in, so this can miss a
    // misplacement; the Thunk test below checks the placement itself.
    struct alignas(16) Pair {
        double v[2];
    };
    struct alignas(32) Wide {
        double v[4];
    };
    std::vector<taskdist::TaskHandle<double>> aligned;
    for (int i = 0; i < 8; ++i) {
        aligned.push_back(pool.submit([p = Pair{{1, 2}}] {
            return reinterpret_cast<std::uintptr_t>(&p) % alignof(Pair) == 0 ? p.v[0] + p.v[1] : -1.0;
        }));
        aligned.push_back(pool.submit([w = Wide{{1, 2, 3, 4}}] {
            return reinterpret_cast<std::uintptr_t>(&w) % alignof(Wide) == 0 ? w.v[0] + w.v[3] : -1.0;
        }));
    }
    // A mutable callable returning a value it owns.
    auto owner = pool.submit([v = std::vector<int>{1, 2, 3}]() mutable { return std::move(v); });

    CHECK(await(plain) == "plain");
    CHECK(await(with_ctx) < n);
    CHECK(await(heap) == 31u * 32u / 2u);
    for (std::size_t i = 0; i < aligned.size(); ++i) CHECK(await(aligned[i]) == (i % 2 == 0 ? 3.0 : 5.0));
    CHECK(await(owner) == std::vector<int>{1, 2, 3});
    pool.wait_idle();
    CHECK(plain_posts.load() == 100);
    CHECK(ctx_posts.load() == 100);
    CHECK(bad_ctx_index.load() == 0);
}

TEST_CASE("a Thunk constructs a callable aligned more strictly than its buffer at the callable's own alignment") {
    // The buffer is 8-aligned; placed at 8 past a 16-aligned address, it is
    // misaligned for a 16-aligned callable, which must go to the heap.
    struct alignas(16) Probe {
        explicit Probe(int* misplaced) noexcept : misplaced_(misplaced) {}
        Probe(Probe&& o) noexcept : misplaced_(o.misplaced_) { check(); }
        Probe(const Probe&) = delete;
        Probe& operator=(const Probe&) = delete;
        Probe& operator=(Probe&&) = delete;
        ~Probe() = default;
        void operator()(taskdist::TaskContext&, taskdist::detail::TaskStateBase*) const noexcept {}
        void check() const noexcept {
            if (reinterpret_cast<std::uintptr_t>(this) % alignof(Probe) != 0) ++*misplaced_;
        }
        int* misplaced_;
    };
    static_assert(alignof(taskdist::detail::Thunk) < alignof(Probe));
    struct alignas(16) Holder {
        char pad[alignof(taskdist::detail::Thunk)];
        taskdist::detail::Thunk thunk;
    };
    int misplaced = 0;
    Holder h{};
    REQUIRE(reinterpret_cast<std::uintptr_t>(&h.thunk) % alignof(Probe) != 0);
    h.thunk = taskdist::detail::Thunk(Probe(&misplaced));
    taskdist::detail::Thunk moved(std::move(h.thunk));
    CHECK(misplaced == 0);
}

TEST_CASE("a WorkerPool handler may return a type convertible to Result") {
    SECTION("const char* into std::string") {
        taskdist::WorkerPool<int, std::string> pool([](int x) { return x ? "nonzero" : "zero"; }, {.workers = 1});
        auto a = pool.submit(0);
        auto b = pool.submit(1);
        CHECK(await(a) == "zero");
        CHECK(await(b) == "nonzero");
    }
    SECTION("int into std::optional<long>, with a TaskContext&") {
        taskdist::WorkerPool<int, std::optional<long>> pool([](int x, taskdist::TaskContext&) { return x * 10; },
                                                            {.workers = 1});
        auto h = pool.submit(4);
        const std::optional<long> v = await(h);
        REQUIRE(v.has_value());
        CHECK(*v == 40);
    }
    SECTION("the constraint rejects a handler whose result does not convert") {
        auto returns_string = [](int) { return std::string("x"); };
        STATIC_REQUIRE_FALSE(taskdist::TaskHandler<decltype(returns_string), int, int>);
        STATIC_REQUIRE(taskdist::TaskHandler<decltype(returns_string), int, std::string>);
        STATIC_REQUIRE(taskdist::TaskHandler<decltype(returns_string), int, void>);
    }
}

// ---- thread names --------------------------------------------------------------------

#if defined(__linux__)
TEST_CASE("worker threads are named \"<name>-<index>\", the prefix cut to fit Linux's 15 bytes") {
    auto names_of = [](const std::string& prefix, std::size_t n) {
        // All n tasks wait for each other, so each runs on its own worker.
        std::latch together(static_cast<std::ptrdiff_t>(n));
        taskdist::ThreadPool pool({.workers = n, .name = prefix});
        std::vector<taskdist::TaskHandle<std::pair<std::size_t, std::string>>> handles;
        for (std::size_t i = 0; i < n; ++i) {
            handles.push_back(pool.submit([&together](taskdist::TaskContext& ctx) {
                together.arrive_and_wait();
                return std::pair{ctx.worker_index(), current_thread_name()};
            }));
        }
        std::vector<std::pair<std::size_t, std::string>> out;
        for (auto& h : handles) out.push_back(await(h));
        std::sort(out.begin(), out.end());
        return out;
    };

    SECTION("a short prefix") {
        const auto seen = names_of("tdtest", 3);
        REQUIRE(seen.size() == 3);
        for (std::size_t w = 0; w < seen.size(); ++w) {
            const std::string expected = "tdtest-" + std::to_string(w);
            CAPTURE(w, expected, seen[w].second);
            CHECK(seen[w].first == w);
            CHECK(seen[w].second == expected);
        }
    }
    SECTION("a prefix too long for 15 bytes keeps the whole index") {
        const auto seen = names_of("a-very-long-pool-name", 2);
        REQUIRE(seen.size() == 2);
        for (std::size_t w = 0; w < seen.size(); ++w) {
            const std::string suffix = "-" + std::to_string(w);
            const std::string expected = std::string("a-very-long-pool-name").substr(0, 15 - suffix.size()) + suffix;
            CAPTURE(w, expected, seen[w].second);
            CHECK(seen[w].second == expected);
        }
    }
    SECTION("the default prefix is \"taskdist\"") {
        taskdist::WorkerPool<int, std::string> pool([](int) { return current_thread_name(); }, {.workers = 1});
        auto h = pool.submit(0);
        CHECK(await(h) == "taskdist-0");
    }
}
#endif

namespace {

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

} // namespace

TEST_CASE("a timeout or deadline that never comes leaves the pool idle, and its destructor prompt") {
    // Both are due at the clock's end: the supervisor's timer waited for
    // that with wait_for, whose addition overflowed inside libstdc++ into
    // the past, and it spun with its lock held (a full core, and a
    // destructor that never got the lock).
    for (const bool deadline : {false, true}) {
        INFO("deadline: " << deadline);
        auto pool = std::make_unique<taskdist::WorkerPool<int, int>>([](int x) { return x; }, taskdist::PoolOptions{.workers = 1});
        auto h = deadline ? pool->submit(1, {.deadline = std::chrono::steady_clock::time_point::max()})
                          : pool->submit(1, {.timeout = std::chrono::nanoseconds::max()});
        CHECK(h.get() == 1);
        const double cpu = process_cpu_seconds();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // measuring idleness: nothing to wait for
        CHECK(process_cpu_seconds() - cpu < 0.1);                     // spinning: about 0.3
        const auto t0 = std::chrono::steady_clock::now();
        pool.reset();
        CHECK(std::chrono::steady_clock::now() - t0 < patience);
    }
}

TEST_CASE("a queue capacity of SIZE_MAX is a bound never reached, not a full queue") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x + 1; },
                                        {.workers = 1, .queue_capacity = std::numeric_limits<std::size_t>::max(),
                                         .overflow = taskdist::Overflow::reject});
    CHECK(pool.submit(1).get() == 2);
    CHECK(pool.try_submit(2).value().get() == 3);
}
