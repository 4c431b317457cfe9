// Tests of TaskHandle: values, exceptions, emptiness, readiness and timed
// waits, void and move-only types, and handles that outlive or leave the
// thread that submitted them.
//
// Synchronisation is explicit: a task that must not finish yet blocks on a
// Gate the test opens. Timeouts (`patience`) only turn a hang into a
// failure; the short timeouts given to wait_for/wait_until are what those
// calls are tested with, never a wait for something to happen. Workers never
// assert: what they see comes back through handles or futures.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// An exception type of our own, with a payload beyond the message, to tell
// a faithful rethrow from a sliced or re-wrapped one.
struct TaskFailure : std::runtime_error {
    TaskFailure(const std::string& what, int code) : std::runtime_error(what), code(code) {}
    int code;
};

// Move-only and not default-constructible: a result type the handle must
// hold without ever default-constructing or copying it.
struct Token {
    explicit Token(int v) : value(v) {}
    Token(Token&&) noexcept = default;
    Token& operator=(Token&&) noexcept = default;
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    int value;
};

} // namespace

// ---- values and exceptions ----------------------------------------------

TEST_CASE("get() returns the value the handler returned for that task") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x * 3 + 1; }, {.workers = 2});
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 0; i < 100; ++i) handles.push_back(pool.submit(i));
    for (int i = 0; i < 100; ++i) {
        const int expected = i * 3 + 1;
        const int seen = await(handles[static_cast<std::size_t>(i)]);
        CAPTURE(i, expected, seen);
        REQUIRE(seen == expected);
    }
}

TEST_CASE("get() rethrows the handler's exception with its own type, message and payload") {
    taskdist::WorkerPool<int, int> pool(
        [](int x) -> int {
            if (x == 7) throw TaskFailure("task 7 failed", 7);
            if (x == 8) throw 42;  // not derived from std::exception
            return x;
        },
        {.workers = 2});

    SECTION("an exception derived from std::exception") {
        auto h = pool.submit(7);
        REQUIRE(h.wait_for(patience));
        bool caught_as_own_type = false;
        std::string message;
        int code = 0;
        try {
            (void)h.get();
        } catch (const TaskFailure& e) {
            caught_as_own_type = true;
            message = e.what();
            code = e.code;
        } catch (...) {
        }
        INFO("expected TaskFailure(\"task 7 failed\", 7); caught as own type: " << caught_as_own_type
                                                                             << ", message \"" << message
                                                                             << "\", code " << code);
        CHECK(caught_as_own_type);
        CHECK(message == "task 7 failed");
        CHECK(code == 7);
        INFO("a get() that threw still empties the handle");
        CHECK_FALSE(h.valid());
    }
    SECTION("a thrown value of a non-class type") {
        auto h = pool.submit(8);
        REQUIRE(h.wait_for(patience));
        int seen = 0;
        try {
            (void)h.get();
        } catch (int v) {
            seen = v;
        } catch (...) {
        }
        CAPTURE(seen);
        CHECK(seen == 42);
    }
    SECTION("a ThreadPool task's exception, the same way") {
        taskdist::ThreadPool tp({.workers = 1});
        auto h = tp.submit([]() -> std::string { throw TaskFailure("from a callable", 3); });
        REQUIRE(h.wait_for(patience));
        REQUIRE_THROWS_AS(h.get(), TaskFailure);
    }
    SECTION("other tasks are unaffected by one that threw") {
        auto bad = pool.submit(7);
        auto good = pool.submit(5);
        CHECK(await(good) == 5);
        REQUIRE(bad.wait_for(patience));
        CHECK_THROWS_AS(bad.get(), TaskFailure);
    }
}

// ---- empty handles ---------------------------------------------------------

TEST_CASE("a second get() throws InvalidHandle, as does every wait on an empty handle") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = 1});

    SECTION("after get() took the value") {
        auto h = pool.submit(1);
        CHECK(await(h) == 1);
        CHECK_FALSE(h.valid());
        CHECK_THROWS_AS(h.get(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.ready(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait_for(1ms), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait_until(Clock::now()), taskdist::InvalidHandle);
    }
    SECTION("a moved-from handle") {
        auto h = pool.submit(2);
        auto moved = std::move(h);
        // NOLINTNEXTLINE(bugprone-use-after-move): what a moved-from handle does is the point of the test
        CHECK_THROWS_AS(h.ready(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait_for(0s), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait_until(std::chrono::system_clock::now()), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.get(), taskdist::InvalidHandle);
        CHECK(await(moved) == 2);
    }
    SECTION("a default-constructed handle") {
        taskdist::TaskHandle<int> h;
        CHECK_THROWS_AS(h.ready(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait(), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.wait_for(1ms), taskdist::InvalidHandle);
        CHECK_THROWS_AS(h.get(), taskdist::InvalidHandle);
        taskdist::TaskHandle<void> v;
        CHECK_THROWS_AS(v.get(), taskdist::InvalidHandle);
    }
    SECTION("InvalidHandle is a taskdist::Error whose message names the call") {
        taskdist::TaskHandle<int> h;
        std::string message;
        try {
            (void)h.ready();
        } catch (const taskdist::Error& e) {
            message = e.what();
        }
        CAPTURE(message);
        CHECK(message.find("ready") != std::string::npos);
    }
}

TEST_CASE("valid() is true from submit until get() or a move, and false for a default handle") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x; }, {.workers = 1});
    taskdist::TaskHandle<int> empty;
    CHECK_FALSE(empty.valid());

    auto h = pool.submit(5);
    CHECK(h.valid());
    taskdist::TaskHandle<int> other = std::move(h);
    // NOLINTNEXTLINE(bugprone-use-after-move): what a moved-from handle does is the point of the test
    CHECK_FALSE(h.valid());
    CHECK(other.valid());

    // Move-assigning over a valid handle drops the old task's handle only.
    auto replaced = pool.submit(6);
    replaced = std::move(other);
    CHECK(replaced.valid());
    // NOLINTNEXTLINE(bugprone-use-after-move): what a moved-from handle does is the point of the test
    CHECK_FALSE(other.valid());
    CHECK(await(replaced) == 5);
    CHECK_FALSE(replaced.valid());
}

// ---- readiness and timed waits -------------------------------------------

TEST_CASE("ready() is false while the task is held on a latch and true once it finished") {
    Gate gate;
    std::promise<void> started;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            started.set_value();
            gate.wait();
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();

    auto h = pool.submit(9);
    REQUIRE(started.get_future().wait_for(patience) == std::future_status::ready);
    CHECK_FALSE(h.ready());
    CHECK_FALSE(h.ready());  // asking does not change anything

    gate.open();
    h.wait();
    CHECK(h.ready());
    CHECK(h.valid());  // ready() and wait() do not take the result
    CHECK(h.get() == 9);
}

TEST_CASE("wait_for returns false while the task is held and true once it is released") {
    Gate gate;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            gate.wait();
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto h = pool.submit(4);

    CHECK_FALSE(h.wait_for(0ms));
    const Clock::time_point before = Clock::now();
    const bool resolved = h.wait_for(20ms);
    const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - before);
    CAPTURE(waited.count());
    CHECK_FALSE(resolved);
    INFO("a timed-out wait_for must have waited at least its timeout");
    CHECK(waited >= 20ms);

    gate.open();
    CHECK(h.wait_for(patience));
    CHECK(h.wait_for(0ms));  // already resolved: true at once
    CHECK(h.get() == 4);
}

TEST_CASE("wait_for with a huge timeout means no limit: it waits for the task instead of overflowing") {
    Gate gate;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            gate.wait();
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto h = pool.submit(5);

    std::promise<bool> outcome;
    std::jthread waiter([&] { outcome.set_value(h.wait_for(std::chrono::hours::max())); });
    auto result = outcome.get_future();
    // An overflowed deadline lies in the past and would make wait_for return
    // false at once, before the gate opens.
    CHECK(result.wait_for(20ms) == std::future_status::timeout);
    gate.open();
    REQUIRE(result.wait_for(patience) == std::future_status::ready);
    CHECK(result.get());
    CHECK(h.wait_for(std::chrono::nanoseconds::max()));
    CHECK(h.get() == 5);
}

TEST_CASE("wait_until returns false at a passed deadline while held and true once released, "
          "for steady_clock and system_clock deadlines") {
    Gate gate;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            gate.wait();
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto h = pool.submit(11);

    SECTION("steady_clock") {
        CHECK_FALSE(h.wait_until(Clock::now() - 1s));
        const Clock::time_point deadline = Clock::now() + 20ms;
        CHECK_FALSE(h.wait_until(deadline));
        INFO("a timed-out wait_until must return no earlier than its deadline");
        CHECK(Clock::now() >= deadline);
        // A deadline in a coarser duration type than the clock's.
        CHECK_FALSE(h.wait_until(std::chrono::time_point_cast<std::chrono::seconds>(Clock::now())));

        gate.open();
        CHECK(h.wait_until(Clock::now() + patience));
        CHECK(h.wait_until(Clock::now() - 1s));  // resolved: true even past the deadline
    }
    SECTION("system_clock") {
        using Sys = std::chrono::system_clock;
        CHECK_FALSE(h.wait_until(Sys::now() - 1s));
        const Sys::time_point deadline = Sys::now() + 20ms;
        CHECK_FALSE(h.wait_until(deadline));

        gate.open();
        CHECK(h.wait_until(Sys::now() + patience));
    }
    CHECK(h.get() == 11);
}

// ---- void results ------------------------------------------------------------

TEST_CASE("a void-result WorkerPool gives TaskHandle<void>: get() returns after the side effect, "
          "or rethrows") {
    std::atomic<int> sum{0};
    taskdist::WorkerPool<int, void> pool(
        [&sum](int x) {
            if (x < 0) throw std::invalid_argument("negative");
            sum.fetch_add(x);
            return x;  // a handler of a void pool may return anything; it is discarded
        },
        {.workers = 2});
    auto h = pool.submit(5);
    static_assert(std::is_same_v<decltype(h), taskdist::TaskHandle<void>>);
    static_assert(std::is_void_v<decltype(h.get())>);
    REQUIRE(h.wait_for(patience));
    h.get();
    CHECK(sum.load() == 5);
    CHECK_FALSE(h.valid());
    CHECK_THROWS_AS(h.get(), taskdist::InvalidHandle);

    auto bad = pool.submit(-1);
    REQUIRE(bad.wait_for(patience));
    CHECK_THROWS_AS(bad.get(), std::invalid_argument);
}

TEST_CASE("ThreadPool::submit of a void lambda gives TaskHandle<void>, with or without TaskContext") {
    taskdist::ThreadPool pool({.workers = 2});
    int written = 0;  // plain int: get() must make the task's write visible
    auto h = pool.submit([&written] { written = 17; });
    static_assert(std::is_same_v<decltype(h), taskdist::TaskHandle<void>>);
    REQUIRE(h.wait_for(patience));
    h.get();
    CHECK(written == 17);

    std::size_t index = 999;
    auto with_ctx = pool.submit([&index](taskdist::TaskContext& ctx) { index = ctx.worker_index(); });
    static_assert(std::is_same_v<decltype(with_ctx), taskdist::TaskHandle<void>>);
    REQUIRE(with_ctx.wait_for(patience));
    with_ctx.get();
    CAPTURE(index);
    CHECK(index < 2);
}

// ---- move-only tasks and results -------------------------------------------

TEST_CASE("move-only tasks (std::unique_ptr<int>) reach the handler intact, by submit and by post") {
    std::atomic<int> posted_sum{0};
    taskdist::WorkerPool<std::unique_ptr<int>, int> pool(
        [&posted_sum](std::unique_ptr<int> p) {
            if (!p) return -1;
            posted_sum.fetch_add(*p);
            return *p * 2;
        },
        {.workers = 2});
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int i = 1; i <= 50; ++i) handles.push_back(pool.submit(std::make_unique<int>(i)));
    for (int i = 51; i <= 60; ++i) pool.post(std::make_unique<int>(i));
    for (int i = 1; i <= 50; ++i) {
        const int seen = await(handles[static_cast<std::size_t>(i - 1)]);
        CAPTURE(i, seen);
        REQUIRE(seen == 2 * i);
    }
    pool.wait_idle();
    CHECK(posted_sum.load() == (60 * 61) / 2);
}

TEST_CASE("move-only results (std::unique_ptr, and a type with no default constructor) come out of get()") {
    SECTION("WorkerPool<int, std::unique_ptr<int>>") {
        taskdist::WorkerPool<int, std::unique_ptr<int>> pool([](int x) { return std::make_unique<int>(x + 100); },
                                                             {.workers = 2});
        auto h = pool.submit(1);
        std::unique_ptr<int> p = await(h);
        REQUIRE(p != nullptr);
        CHECK(*p == 101);
    }
    SECTION("ThreadPool with a move-only callable returning a move-only, non-default-constructible type") {
        taskdist::ThreadPool pool({.workers = 1});
        auto owned = std::make_unique<int>(23);
        auto h = pool.submit([p = std::move(owned)]() mutable { return Token(*p); });
        static_assert(std::is_same_v<decltype(h), taskdist::TaskHandle<Token>>);
        CHECK(await(h).value == 23);
    }
    SECTION("a result that is never taken is destroyed with its handle") {
        auto tracked = std::make_shared<int>(0);
        std::weak_ptr<int> watch = tracked;
        taskdist::ThreadPool pool({.workers = 1});
        {
            auto h = pool.submit([t = std::move(tracked)]() mutable { return std::move(t); });
            REQUIRE(h.wait_for(patience));
            CHECK_FALSE(watch.expired());  // the value sits in the handle's state
        }
        // The worker may drop its reference to the state just after the
        // handle saw it ready; joining the workers orders that before us.
        pool.shutdown();
        CHECK(watch.expired());
    }
}

// ---- handles that go away or move ----------------------------------------

TEST_CASE("destroying a handle whose task has not finished neither blocks nor cancels the task") {
    Gate gate;
    std::promise<void> started;
    std::atomic<int> finished{0};
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 0) {
                started.set_value();
                gate.wait();
            }
            finished.fetch_add(1);
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();

    // Task 0 is running and held; task 1 is queued behind it on the only worker.
    auto running = pool.submit(0);
    auto queued = pool.submit(1);
    REQUIRE(started.get_future().wait_for(patience) == std::future_status::ready);

    // Destroy both handles on another thread, so that a blocking destructor
    // fails this test instead of hanging it.
    std::promise<void> destroyed;
    auto destroyed_future = destroyed.get_future();
    std::jthread dropper([&destroyed, a = std::move(running), b = std::move(queued)]() mutable {
        { [[maybe_unused]] auto sink_a = std::move(a); [[maybe_unused]] auto sink_b = std::move(b); }
        destroyed.set_value();
    });
    const bool returned = destroyed_future.wait_for(patience) == std::future_status::ready;
    INFO("the handles' destructors did not return while their task was held");
    REQUIRE(returned);
    CHECK(finished.load() == 0);  // still held: nothing finished behind our back

    gate.open();
    pool.wait_idle();
    INFO("both tasks must still run after their handles are gone");
    CHECK(finished.load() == 2);
    CHECK(pool.stats().completed == 2);
}

TEST_CASE("a handle moved to another thread delivers the value there") {
    Gate gate;
    taskdist::ThreadPool pool({.workers = 2});
    const auto open = gate.open_on_exit();

    // Submitted on a producer thread, handed to a consumer thread through a
    // promise, and waited for there while the task is still held.
    std::promise<taskdist::TaskHandle<std::string>> handoff;
    std::promise<std::string> result;
    auto result_future = result.get_future();
    std::jthread producer([&] {
        handoff.set_value(pool.submit([&gate] {
            gate.wait();
            return std::string("made on a worker");
        }));
    });
    std::jthread consumer([&] {
        try {
            taskdist::TaskHandle<std::string> h = handoff.get_future().get();
            if (!h.wait_for(patience)) throw std::runtime_error("the task did not resolve in time");
            result.set_value(h.get());
        } catch (...) {
            result.set_exception(std::current_exception());
        }
    });
    gate.open();
    REQUIRE(result_future.wait_for(patience + 5s) == std::future_status::ready);
    CHECK(result_future.get() == "made on a worker");
}

TEST_CASE("a handle moved into a lambda and back still yields the value once") {
    taskdist::WorkerPool<int, int> pool([](int x) { return -x; }, {.workers = 1});
    auto h = pool.submit(8);
    auto holder = [h = std::move(h)]() mutable { return std::move(h); };
    // NOLINTNEXTLINE(bugprone-use-after-move): what a moved-from handle does is the point of the test
    CHECK_FALSE(h.valid());
    taskdist::TaskHandle<int> back = holder();
    CHECK(await(back) == -8);
    CHECK_THROWS_AS(back.get(), taskdist::InvalidHandle);
}
