// Tests of nested waits: a task that waits for tasks it submitted to its own
// pool runs them itself when no worker has started them, so fork-join code
// never starves the pool, down to one worker, under every distributor.
//
// Synchronisation is explicit (handles, futures); `patience` only turns a
// hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

constexpr long fib_plain(int n) { return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2); }

// Tasks fib(n) submits: 2 * fib(n + 1) - 1 in all, the first included.
constexpr std::uint64_t fib_tasks(int n) { return static_cast<std::uint64_t>(2 * fib_plain(n + 1) - 1); }

// Recursive fibonacci where every call is a task of the same pool and waits
// for its two children.
template <class Dist>
void fib_through_pool(std::size_t workers, int n) {
    INFO(workers << " worker(s), fib(" << n << ")");
    using Pool = taskdist::WorkerPool<int, long, Dist>;
    Pool* self = nullptr;  // set before the first submit, which orders it before every task
    Pool pool(
        [&self](int k) -> long {
            if (k < 2) return k;
            auto a = self->submit(k - 1, {.priority = k - 1, .key = static_cast<std::uint64_t>(k - 1)});
            auto b = self->submit(k - 2, {.priority = k - 2, .key = static_cast<std::uint64_t>(k - 2)});
            return a.get() + b.get();
        },
        {.workers = workers});
    self = &pool;
    auto root = pool.submit(n);
    REQUIRE(root.wait_for(patience));
    CHECK(root.get() == fib_plain(n));
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.submitted == fib_tasks(n));
    CHECK(s.completed == s.submitted);
    if (workers == 1) {
        // One worker can only have made progress by running children inline.
        CHECK(s.ran_inline > 0);
    }
    check_balanced(s);
}

} // namespace

TEST_CASE("recursive fibonacci through the pool completes with 1 and 2 workers") {
    const std::size_t workers = GENERATE(std::size_t{1}, std::size_t{2});
    fib_through_pool<taskdist::SharedQueue>(workers, 18);
}

TEST_CASE("nested waits make progress under every distributor") {
    const std::size_t workers = GENERATE(std::size_t{1}, std::size_t{2});
    SECTION("RoundRobin") { fib_through_pool<taskdist::RoundRobin>(workers, 14); }
    SECTION("LeastBusy") { fib_through_pool<taskdist::LeastBusy>(workers, 14); }
    SECTION("Priority") { fib_through_pool<taskdist::Priority>(workers, 14); }
    SECTION("Sticky") { fib_through_pool<taskdist::Sticky>(workers, 14); }
}

TEST_CASE("ThreadPool: a callable that waits for callables it submitted completes on one worker") {
    taskdist::ThreadPool pool({.workers = 1});
    std::function<long(int)> fib = [&](int k) -> long {
        if (k < 2) return k;
        auto a = pool.submit([&fib, k] { return fib(k - 1); });
        auto b = pool.submit([&fib, k] { return fib(k - 2); });
        return a.get() + b.get();
    };
    auto root = pool.submit([&fib] { return fib(15); });
    REQUIRE(root.wait_for(patience));
    CHECK(root.get() == fib_plain(15));
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.submitted == fib_tasks(15));
    CHECK(s.completed == s.submitted);
    check_balanced(s);
}

TEST_CASE("a task that waits for a group of its own tasks on one worker gets every result, in order") {
    using Pool = taskdist::WorkerPool<int, int>;
    Pool* self = nullptr;
    Pool pool(
        [&self](int k) -> int {
            if (k < 100) return k * k;
            std::vector<int> parts(10);
            std::iota(parts.begin(), parts.end(), 0);
            auto group = self->submit_batch(parts);
            (void)group.wait_for(patience);  // timed waits run children inline too
            int sum = 0;
            for (int v : group.results()) sum += v;
            return sum;
        },
        {.workers = 1});
    self = &pool;
    auto root = pool.submit(100);
    REQUIRE(root.wait_for(patience));
    CHECK(root.get() == 285);  // 0 + 1 + 4 + ... + 81
}

TEST_CASE("a child run inline that throws: the waiting task sees the exception, and it is counted as failed") {
    using Pool = taskdist::WorkerPool<int, std::string>;
    Pool* self = nullptr;
    Pool pool(
        [&self](int k) -> std::string {
            if (k == 1) throw std::runtime_error("child failed");
            auto child = self->submit(1);
            try {
                (void)child.get();
                return "no exception";
            } catch (const std::runtime_error& e) {
                return e.what();
            }
        },
        {.workers = 1});
    self = &pool;
    auto root = pool.submit(0);
    REQUIRE(root.wait_for(patience));
    CHECK(root.get() == "child failed");
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.failed == 1);
    CHECK(s.completed == 1);
    CHECK(s.ran_inline == 1);
    check_balanced(s);
}

TEST_CASE("cancelling a task that waits for a child it runs inline requests the child's stop too") {
    std::promise<void> child_running;
    auto child_running_f = child_running.get_future();
    std::atomic<int> child_saw_stop{-1};
    using Pool = taskdist::WorkerPool<int, int>;
    Pool* self = nullptr;
    Pool pool(
        [&](int k, taskdist::TaskContext& ctx) -> int {
            if (k == 1) {
                child_running.set_value();
                child_saw_stop = wait_for_stop(ctx.stop_token(), patience) ? 1 : 0;
                return 1;
            }
            auto child = self->submit(1);
            return child.get();
        },
        {.workers = 1});
    self = &pool;
    auto parent = pool.submit(0);
    REQUIRE(arrives(child_running_f));
    CHECK(parent.cancel());
    CHECK(outcome_of(parent) == "TaskCancelled");
    pool.wait_idle();
    CHECK(child_saw_stop.load() == 1);
    CHECK(pool.stats().ran_inline == 1);
}
