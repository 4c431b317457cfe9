// Tests of TaskGroup: one handle over exactly a batch of tasks, with
// wait/wait_for, results() in submission order, first-error semantics and
// cancel().
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
using namespace test_support;
using namespace std::chrono_literals;
} // namespace

TEST_CASE("submit_batch returns a group whose results() are the batch's values in submission order") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x * x; }, {.workers = 3});
    std::vector<int> inputs;
    for (int i = 0; i < 500; ++i) inputs.push_back(i);
    taskdist::TaskGroup<int> group = pool.submit_batch(inputs);
    CHECK(group.size() == 500);
    REQUIRE(group.wait_for(patience));
    CHECK(group.ready());
    const std::vector<int> values = group.results();
    REQUIRE(values.size() == 500);
    for (int i = 0; i < 500; ++i) {
        CAPTURE(i);
        CHECK(values[static_cast<std::size_t>(i)] == i * i);
    }
    CHECK(group.empty());  // results() takes everything
}

TEST_CASE("a group waits for exactly its own tasks, not for the rest of the pool") {
    Gate outside, inside;
    std::promise<void> outside_running;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == -1) {
                outside_running.set_value();
                outside.wait();
            }
            if (x == -2) inside.wait();
            return x;
        },
        {.workers = 2});
    const auto open_outside = outside.open_on_exit();
    const auto open_inside = inside.open_on_exit();
    auto held = pool.submit(-1);  // not in the group, holds one worker throughout
    auto running_f = outside_running.get_future();
    REQUIRE(arrives(running_f));

    auto group = pool.submit_batch(std::vector<int>{1, 2, -2, 3});
    CHECK_FALSE(group.wait_for(20ms));  // its own task -2 is held
    CHECK_FALSE(group.ready());
    inside.open();
    REQUIRE(group.wait_for(patience));  // while the outside task is still held
    CHECK_FALSE(held.ready());
    CHECK(group.results() == std::vector<int>{1, 2, -2, 3});
    outside.open();
    CHECK(await(held) == -1);
}

TEST_CASE("results() waits for every task, then rethrows the first failure in submission order") {
    Gate last;
    std::atomic<bool> last_done{false};
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 9) {
                last.wait();
                last_done = true;
            }
            if (x == 3 || x == 7) throw std::runtime_error("task " + std::to_string(x));
            return x;
        },
        {.workers = 2});
    const auto open = last.open_on_exit();
    std::vector<int> inputs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    auto group = pool.submit_batch(inputs);

    std::promise<std::pair<std::string, bool>> seen;
    auto seen_f = seen.get_future();
    std::jthread collector([&] {
        try {
            (void)group.results();
            seen.set_value({"no error", last_done.load()});
        } catch (const std::runtime_error& e) {
            seen.set_value({e.what(), last_done.load()});
        }
    });
    // The 7th task may well have failed before the 3rd; results() must still
    // be waiting for task 9.
    CHECK(seen_f.wait_for(50ms) == std::future_status::timeout);
    last.open();
    REQUIRE(arrives(seen_f));
    const auto [what, waited_for_last] = seen_f.get();
    CHECK(what == "task 3");
    CHECK(waited_for_last);
}

TEST_CASE("cancel() cancels the group's unresolved tasks and says how many") {
    Gate gate;
    std::promise<void> holding;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 0) {
                holding.set_value();
                gate.wait();
            }
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto hold = pool.submit(0);
    auto holding_f = holding.get_future();
    REQUIRE(arrives(holding_f));
    auto group = pool.submit_batch(std::vector<int>{1, 2, 3});
    CHECK(group.cancel() == 3);
    CHECK(group.ready());
    CHECK_THROWS_AS(group.results(), taskdist::TaskCancelled);
    gate.open();
    CHECK(await(hold) == 0);
}

TEST_CASE("a group can be filled by hand, from a ThreadPool, with void results") {
    taskdist::ThreadPool pool({.workers = 2});
    std::atomic<int> sum{0};
    taskdist::TaskGroup<void> group;
    for (int i = 1; i <= 10; ++i) group.add(pool.submit([&sum, i] { sum.fetch_add(i); }));
    CHECK(group.size() == 10);
    group.results();
    CHECK(sum.load() == 55);
    CHECK_THROWS_AS(group.add(taskdist::TaskHandle<void>{}), taskdist::InvalidHandle);
}
