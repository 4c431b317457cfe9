// Tests of fault tolerance: timeouts and deadlines, cancellation, hung
// workers replaced by fresh threads, per-worker state and its factory,
// broken workers, retries, and exactly-once resolution under random faults.
//
// Synchronisation is explicit (latches, futures, the pool's own callbacks).
// Durations given to the pool (timeouts, hang_grace) are what is under test;
// `patience` only turns a hang into a failure. Workers never assert.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace {

using namespace test_support;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A release the test owns and every stuck handler waits on, for at most
// `cap`: handlers that ignore their stop token end once the test is over,
// so no thread outlives the process for long.
class Release {
public:
    void wait_at_most(std::chrono::nanoseconds cap) const { (void)future_.wait_for(cap); }
    void release() {
        std::call_once(once_, [this] { promise_.set_value(); });
    }
    ~Release() { release(); }

private:
    std::promise<void> promise_;
    std::shared_future<void> future_ = promise_.get_future().share();
    std::once_flag once_;
};

// Collects on_replace events; the test waits for the n-th.
class Replacements {
public:
    void record(const taskdist::ReplaceEvent& e) {
        std::lock_guard lock(mutex_);
        events_.push_back(e);
        for (auto& [n, p] : waiters_) {
            if (events_.size() == n) p.set_value();
        }
    }
    // True once `n` events were seen, within patience.
    bool wait_for_count(std::size_t n) {
        std::future<void> f;
        {
            std::lock_guard lock(mutex_);
            if (events_.size() >= n) return true;
            waiters_.emplace_back(n, std::promise<void>());
            f = waiters_.back().second.get_future();
        }
        return arrives(f);
    }
    std::vector<taskdist::ReplaceEvent> events() {
        std::lock_guard lock(mutex_);
        return events_;
    }

private:
    std::mutex mutex_;
    std::vector<taskdist::ReplaceEvent> events_;
    std::vector<std::pair<std::size_t, std::promise<void>>> waiters_;
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAULTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAULTS_SANITIZED 1
#endif
#endif

/// Thread stacks mapped in this process, by their guard pages (a page of
/// no access at the bottom of each): a stack stays mapped until its thread
/// is joined, and glibc keeps up to 40 MiB of joined ones for reuse.
/// Counted, not sized: the process's size also moves with malloc's arenas
/// (64 MiB each, one more for some new threads). Under a sanitizer, its own
/// mappings blur the count.
std::size_t guard_pages() {
    std::ifstream in("/proc/self/maps");
    const auto page = static_cast<unsigned long>(::sysconf(_SC_PAGESIZE));
    std::size_t n = 0;
    std::string line;
    while (std::getline(in, line)) {
        unsigned long lo = 0, hi = 0;
        char perms[5] = {};
        if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 && std::string_view(perms) == "---p" &&
            hi - lo == page) {
            ++n;
        }
    }
    return n;
}

std::size_t thread_count() {
    const std::filesystem::directory_iterator tasks("/proc/self/task");
    return static_cast<std::size_t>(std::distance(begin(tasks), end(tasks)));
}

std::uint64_t sum_replaced_hung(const taskdist::PoolStats& s) {
    std::uint64_t n = 0;
    for (const auto& w : s.per_worker) n += w.replaced_hung;
    return n;
}

void check_all_resolved(const taskdist::PoolStats& s) {
    INFO("submitted " << s.submitted << " completed " << s.completed << " failed " << s.failed << " timed_out "
                      << s.timed_out << " cancelled " << s.cancelled << " queued " << s.queued << " running "
                      << s.running);
    CHECK(s.submitted == s.completed + s.failed + s.timed_out + s.cancelled);
    CHECK(s.queued == 0);
    CHECK(s.running == 0);
}

} // namespace

// ---- timeouts and hung workers ---------------------------------------------

TEST_CASE("threads given up as hung are joined once their handler returns, while the pool lives: hangs do not "
          "pile up thread stacks") {
    constexpr int hangs = 24;
    std::vector<std::shared_ptr<Release>> gates;
    for (int i = 0; i < hangs; ++i) gates.push_back(std::make_shared<Release>());
    auto replacements = std::make_shared<Replacements>();
    taskdist::WorkerPool<int, int> pool(
        [gates](int i) {
            gates[static_cast<std::size_t>(i)]->wait_at_most(patience);  // ignores its stop token
            return i;
        },
        {.workers = 1,
         .hang_grace = 1ms,
         .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});
    std::size_t before = 0;
    for (int i = 0; i < hangs; ++i) {
        auto h = pool.submit(i, {.timeout = 1ms});
        REQUIRE(replacements->wait_for_count(static_cast<std::size_t>(i) + 1));
        // Its replacement runs already: the given-up thread is the one to go.
        const std::size_t threads = thread_count();
        gates[static_cast<std::size_t>(i)]->release();  // its thread returns and exits
        CHECK_THROWS_AS(h.get(), taskdist::TaskTimeout);
        // Gone before the next hang, which is when the pool joins it.
        for (const auto until = Clock::now() + patience; thread_count() >= threads && Clock::now() < until;) {
            std::this_thread::sleep_for(1ms);  // polling the kernel's list: nothing to wait on
        }
        REQUIRE(thread_count() < threads);
        if (i == 1) before = guard_pages();
    }
    const std::size_t after = guard_pages();
    INFO("thread stacks mapped after the second hang: " << before << ", after the last: " << after);
#ifndef FAULTS_SANITIZED
    // Not joined, the 22 given-up threads since kept theirs; joined, at most
    // glibc's cache (5 of 8 MiB) and the last one's stay.
    CHECK(after < before + (hangs - 2) / 2);
#endif
    CHECK(sum_replaced_hung(pool.stats()) == static_cast<std::uint64_t>(hangs));
}

TEST_CASE("a handler that ignores its stop token for 10 s: its handle resolves TaskTimeout on time, "
          "other tasks keep flowing at full width, and the destructor returns in bounded time") {
    constexpr auto timeout = 50ms;
    constexpr auto hang_grace = 100ms;
    constexpr auto quarantine_wait = 200ms;
    auto stuck = std::make_shared<Release>();
    auto replacements = std::make_shared<Replacements>();
    std::atomic<int> quick_done{0};

    auto pool = std::make_unique<taskdist::WorkerPool<int, int>>(
        [stuck, &quick_done](int x) {
            if (x < 0) {
                stuck->wait_at_most(10s);  // ignores its stop token
                return -1;
            }
            quick_done.fetch_add(1);
            return x;
        },
        taskdist::PoolOptions{.workers = 2,
                              .name = "hang",
                              .hang_grace = hang_grace,
                              .quarantine_wait = quarantine_wait,
                              .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});

    const auto submitted_at = Clock::now();
    auto hung = pool->submit(-1, {.timeout = timeout});
    // Meanwhile the other worker serves a stream of quick tasks.
    std::vector<taskdist::TaskHandle<int>> quick;
    for (int i = 0; i < 200; ++i) quick.push_back(pool->submit(i));

    REQUIRE(hung.wait_for(patience));
    const auto resolved_after = Clock::now() - submitted_at;
    CHECK(outcome_of(hung) == "TaskTimeout");
    INFO("resolved after " << std::chrono::duration_cast<std::chrono::milliseconds>(resolved_after).count() << " ms");
    CHECK(resolved_after >= timeout);
    CHECK(resolved_after < timeout + 5s);  // margin for a loaded machine, far below the 10 s hang

    for (int i = 0; i < 200; ++i) CHECK(await(quick[static_cast<std::size_t>(i)]) == i);

    // hang_grace after the stop request the slot is declared hung and rebuilt.
    REQUIRE(replacements->wait_for_count(1));
    const auto events = replacements->events();
    CHECK(events[0].reason == taskdist::ReplaceReason::hung);
    CHECK(events[0].count == 1);

    auto s = pool->stats();
    CHECK(s.timed_out == 1);
    CHECK(sum_replaced_hung(s) == 1);
    CHECK(s.workers == 2);
    CHECK(quick_done.load() >= 200);

    // The destructor waits for the quarantined thread at most quarantine_wait.
    std::promise<void> destroyed;
    auto destroyed_f = destroyed.get_future();
    const auto destroy_start = Clock::now();
    std::jthread destroyer([&] {
        pool.reset();
        destroyed.set_value();
    });
    REQUIRE(destroyed_f.wait_for(patience) == std::future_status::ready);
    const auto destroy_took = Clock::now() - destroy_start;
    INFO("destructor took " << std::chrono::duration_cast<std::chrono::milliseconds>(destroy_took).count() << " ms");
    CHECK(destroy_took < quarantine_wait + 5s);
    stuck->release();  // let the left-behind thread end
}

TEST_CASE("after a hung worker is replaced, two tasks that must run at the same time both finish") {
    auto stuck = std::make_shared<Release>();
    auto replacements = std::make_shared<Replacements>();
    auto rendezvous = std::make_shared<std::latch>(2);
    taskdist::WorkerPool<int, int> pool(
        [stuck, rendezvous](int x, taskdist::TaskContext& ctx) {
            if (x < 0) {
                stuck->wait_at_most(10s);
                return -1;
            }
            // Both rendezvous tasks must be running at once to get past this.
            rendezvous->arrive_and_wait();
            return static_cast<int>(ctx.worker_index());
        },
        {.workers = 2,
         .hang_grace = 20ms,
         .quarantine_wait = 100ms,
         .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});
    auto hung = pool.submit(-1, {.timeout = 10ms});
    REQUIRE(hung.wait_for(patience));
    CHECK(outcome_of(hung) == "TaskTimeout");
    REQUIRE(replacements->wait_for_count(1));

    auto a = pool.submit(1);
    auto b = pool.submit(2);
    const int wa = await(a);
    const int wb = await(b);
    CAPTURE(wa, wb);
    CHECK(wa != wb);
    stuck->release();
}

TEST_CASE("a handler that honours its stop token returns early, and its worker is not replaced") {
    auto replacements = std::make_shared<Replacements>();
    std::promise<bool> saw_stop;
    auto saw_stop_f = saw_stop.get_future();
    taskdist::WorkerPool<int, int> pool(
        [&saw_stop](int x, taskdist::TaskContext& ctx) {
            if (x != 1) return x;
            saw_stop.set_value(wait_for_stop(ctx.stop_token(), patience));
            return 0;
        },
        {.workers = 1,
         .hang_grace = 10s,
         .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});
    auto h = pool.submit(1, {.timeout = 20ms});
    REQUIRE(h.wait_for(patience));
    CHECK(outcome_of(h) == "TaskTimeout");
    REQUIRE(arrives(saw_stop_f));
    CHECK(saw_stop_f.get());
    pool.wait_idle();
    // The worker returned well within hang_grace: it keeps serving.
    auto next = pool.submit(2);
    CHECK(await(next) == 2);
    CHECK(replacements->events().empty());
    CHECK(sum_replaced_hung(pool.stats()) == 0);
}

TEST_CASE("PoolOptions::default_timeout applies to tasks that set none, and a task's own timeout wins") {
    taskdist::WorkerPool<int, int> pool(
        [](int ms, taskdist::TaskContext& ctx) {
            // A cooperative sleeper: waits `ms` or until stopped.
            (void)wait_for_stop(ctx.stop_token(), std::chrono::milliseconds(ms));
            return ms;
        },
        {.workers = 2, .default_timeout = 20ms});
    auto by_default = pool.submit(60'000);
    auto own_longer = pool.submit(1, {.timeout = 30s});
    REQUIRE(by_default.wait_for(patience));
    CHECK(outcome_of(by_default) == "TaskTimeout");
    CHECK(await(own_longer) == 1);
}

TEST_CASE("a task whose deadline passes while it is queued is never started and resolves TaskTimeout") {
    Gate gate;
    std::atomic<int> started{0};
    std::promise<void> holding;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 0) {
                holding.set_value();
                gate.wait();
            } else {
                started.fetch_add(1);
            }
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto hold = pool.submit(0);
    auto holding_f = holding.get_future();
    REQUIRE(arrives(holding_f));

    auto late = pool.submit(1, {.deadline = Clock::now() + 20ms});
    REQUIRE(late.wait_for(patience));  // resolves while the worker is still held
    CHECK_FALSE(gate.is_open());
    CHECK(outcome_of(late) == "TaskTimeout");
    gate.open();
    CHECK(await(hold) == 0);
    pool.wait_idle();
    CHECK(started.load() == 0);
    const auto s = pool.stats();
    CHECK(s.timed_out == 1);
    check_all_resolved(s);
}

TEST_CASE("a value returned after the task's timeout is a timeout, even while the supervisor is held up and "
          "fires no timer") {
    // The supervisor replaces a hung worker and calls on_replace on its own
    // thread; held there, it fires no timer. The late value must not win:
    // a task's outcome does not depend on how quickly the supervisor runs.
    auto stuck = std::make_shared<Release>();
    std::promise<void> supervisor_held;
    std::latch let_go{1};
    std::atomic<bool> first{true};
    auto pool = std::make_unique<taskdist::WorkerPool<int, int>>(
        [stuck](int x) {
            if (x < 0) {
                stuck->wait_at_most(10s);  // ignores its stop token: declared hung
                return -1;
            }
            spin_for(20ms);  // well past its 1 ms timeout, ignoring the stop request
            return x;
        },
        taskdist::PoolOptions{.workers = 2,
                              .hang_grace = 1ms,
                              .on_replace = [&](const taskdist::ReplaceEvent&) {
                                  if (first.exchange(false)) {
                                      supervisor_held.set_value();
                                      let_go.wait();
                                  }
                              }});
    auto hung = pool->submit(-1, {.timeout = 1ms});
    auto held = supervisor_held.get_future();
    REQUIRE(held.wait_for(patience) == std::future_status::ready);

    auto late = pool->submit(7, {.timeout = 1ms});
    const bool resolved = late.wait_for(patience);
    let_go.count_down();
    stuck->release();
    REQUIRE(resolved);
    CHECK(outcome_of(late) == "TaskTimeout");
    REQUIRE(hung.wait_for(patience));
    CHECK(outcome_of(hung) == "TaskTimeout");
    pool.reset();
}

TEST_CASE("a pool shut down from its on_replace hook and destroyed while the hook still runs is not touched "
          "after it is gone") {
    // on_replace runs on the supervisor's thread. shutdown() there cannot
    // join that thread, and the owner may destroy the pool before the hook
    // returns: the supervisor must hold the pool until it is done with it.
    // (Before, the pool was destroyed at reset() below and the supervisor
    // went on using it.)
    struct Signal {  // sets its promise when destroyed
        explicit Signal(std::promise<void>* p) : p(p) {}
        Signal(const Signal&) = delete;
        Signal& operator=(const Signal&) = delete;
        ~Signal() {
            if (p != nullptr) p->set_value();
        }
        std::promise<void>* p;
    };
    auto stuck = std::make_shared<Release>();
    std::promise<void> in_hook;
    std::latch hook_may_return{1};
    std::promise<void> hung_thread_gone;
    std::promise<void> pool_destroyed;
    auto on_destroy = std::make_shared<Signal>(&pool_destroyed);
    std::atomic<taskdist::WorkerPool<int, int>*> self{nullptr};
    auto pool = std::make_unique<taskdist::WorkerPool<int, int>>(
        [stuck, on_destroy, &hung_thread_gone](int x) {
            if (x < 0) {
                // At the thread's end, after it dropped its hold on the pool.
                thread_local Signal thread_end(&hung_thread_gone);
                stuck->wait_at_most(10s);  // ignores its stop token: declared hung
            }
            return x;
        },
        taskdist::PoolOptions{.workers = 1,
                              .hang_grace = 1ms,
                              .quarantine_wait = 1ms,
                              .on_replace = [&](const taskdist::ReplaceEvent&) {
                                  self.load()->shutdown();
                                  in_hook.set_value();
                                  hook_may_return.wait();
                              }});
    on_destroy.reset();  // the pool's handler holds the only copy now
    self.store(pool.get());
    auto hung = pool->submit(-1, {.timeout = 1ms});
    auto entered = in_hook.get_future();
    REQUIRE(arrives(entered));
    REQUIRE(hung.wait_for(patience));
    CHECK(outcome_of(hung) == "TaskTimeout");

    stuck->release();
    auto gone = hung_thread_gone.get_future();
    REQUIRE(arrives(gone));  // no worker holds the pool any more
    pool.reset();            // the owner drops it while the hook still runs
    auto destroyed = pool_destroyed.get_future();
    const bool destroyed_early = destroyed.wait_for(0s) == std::future_status::ready;
    hook_may_return.count_down();
    CHECK_FALSE(destroyed_early);  // the supervisor still held it
    CHECK(arrives(destroyed));     // and let it go once the hook returned
}

TEST_CASE("a deadline also bounds run time") {
    taskdist::ThreadPool pool({.workers = 1});
    auto h = pool.submit(
        [](taskdist::TaskContext& ctx) {
            (void)wait_for_stop(ctx.stop_token(), patience);
            return ctx.stop_requested();
        },
        {.deadline = Clock::now() + 20ms});
    REQUIRE(h.wait_for(patience));
    CHECK(outcome_of(h) == "TaskTimeout");
}

// ---- cancellation ----------------------------------------------------------

TEST_CASE("cancel() while queued: the task never starts and resolves TaskCancelled") {
    Gate gate;
    std::atomic<int> ran{0};
    std::promise<void> holding;
    taskdist::WorkerPool<int, int> pool(
        [&](int x) {
            if (x == 0) {
                holding.set_value();
                gate.wait();
            } else {
                ran.fetch_add(1);
            }
            return x;
        },
        {.workers = 1});
    const auto open = gate.open_on_exit();
    auto hold = pool.submit(0);
    auto holding_f = holding.get_future();
    REQUIRE(arrives(holding_f));
    auto queued = pool.submit(1);
    CHECK(queued.cancel());
    CHECK(queued.ready());  // resolved at once, while the worker is still held
    CHECK_FALSE(queued.cancel());  // a second cancel changes nothing
    CHECK(outcome_of(queued) == "TaskCancelled");
    gate.open();
    CHECK(await(hold) == 0);
    pool.wait_idle();
    CHECK(ran.load() == 0);
    const auto s = pool.stats();
    CHECK(s.cancelled == 1);
    check_all_resolved(s);
}

TEST_CASE("cancel() while running: the handle resolves at once and the stop token is requested") {
    std::promise<void> running;
    std::promise<bool> observed;
    Release never;
    taskdist::WorkerPool<int, int> pool(
        [&](int, taskdist::TaskContext& ctx) {
            running.set_value();
            observed.set_value(wait_for_stop(ctx.stop_token(), patience));
            return 7;
        },
        {.workers = 1});
    auto h = pool.submit(1);
    auto running_f = running.get_future();
    REQUIRE(arrives(running_f));
    CHECK(h.cancel());
    CHECK(h.ready());
    CHECK(outcome_of(h) == "TaskCancelled");
    auto observed_f = observed.get_future();
    REQUIRE(arrives(observed_f));
    CHECK(observed_f.get());
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.cancelled == 1);
    CHECK(s.completed == 0);
    check_all_resolved(s);
}

TEST_CASE("a cancel whose stop callback is still running holds back the worker's next task, which starts "
          "with a fresh, unrequested stop token") {
    // The callback runs on the cancelling thread, after the stop flag is
    // already visible to the handler. The worker must not begin its next
    // attempt (which replaces the stop source) until the cancel is done.
    std::latch handler_started(1);
    std::latch in_callback(1);
    std::latch release(1);
    std::atomic<bool> callback_done{false};
    std::optional<std::stop_callback<std::function<void()>>> callback;  // outlives the handler
    std::promise<std::pair<bool, bool>> second_saw;  // {callback done, stop requested}
    taskdist::WorkerPool<int, int> pool(
        [&](int x, taskdist::TaskContext& ctx) {
            if (x == 1) {
                callback.emplace(ctx.stop_token(), std::function<void()>([&] {
                                     in_callback.count_down();
                                     release.wait();
                                     callback_done.store(true);
                                 }));
                handler_started.count_down();
                while (!ctx.stop_requested()) std::this_thread::yield();
            } else {
                second_saw.set_value({callback_done.load(), ctx.stop_requested()});
            }
            return x;
        },
        {.workers = 1});
    auto first = pool.submit(1);
    auto second = pool.submit(2);
    handler_started.wait();
    std::jthread canceller([&] { first.cancel(); });
    in_callback.wait();
    // Without the hold-back, the second task starts well within this bound.
    auto saw = second_saw.get_future();
    CHECK(saw.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
    release.count_down();
    REQUIRE(arrives(saw));
    const auto [done, stopped] = saw.get();
    CHECK(done);
    CHECK_FALSE(stopped);
    canceller.join();
    CHECK(outcome_of(first) == "TaskCancelled");
    CHECK(second.get() == 2);
    callback.reset();
}

TEST_CASE("cancel() after completion is a no-op that says so, and get() still returns the value") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x * 2; }, {.workers = 1});
    auto h = pool.submit(21);
    REQUIRE(h.wait_for(patience));
    CHECK_FALSE(h.cancel());
    CHECK(h.get() == 42);
    CHECK_THROWS_AS(h.cancel(), taskdist::InvalidHandle);
    CHECK(pool.stats().cancelled == 0);
}

TEST_CASE("a caller's stop token cancels a queued task, and one already stopped cancels at submit") {
    Gate gate;
    std::promise<void> holding;
    taskdist::ThreadPool pool({.workers = 1});
    const auto open = gate.open_on_exit();
    auto hold = pool.submit([&] {
        holding.set_value();
        gate.wait();
        return 0;
    });
    auto holding_f = holding.get_future();
    REQUIRE(arrives(holding_f));

    std::stop_source source;
    auto h = pool.submit([] { return 1; }, {.stop_token = source.get_token()});
    CHECK_FALSE(h.ready());
    source.request_stop();
    CHECK(h.ready());
    CHECK(outcome_of(h) == "TaskCancelled");

    std::stop_source already;
    already.request_stop();
    auto h2 = pool.submit([] { return 2; }, {.stop_token = already.get_token()});
    CHECK(h2.ready());
    CHECK(outcome_of(h2) == "TaskCancelled");

    gate.open();
    CHECK(await(hold) == 0);
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.cancelled == 2);
    check_all_resolved(s);
}

// ---- per-worker state, broken workers, retries -------------------------------

TEST_CASE("per-worker state: each worker's factory runs once on that worker, and its handler sees only its own state") {
    struct Conn {
        std::size_t made_for;
        int uses = 0;
    };
    std::atomic<int> made{0};
    taskdist::WorkerPool<int, std::pair<std::size_t, std::size_t>> pool(
        taskdist::per_worker(
            [&made](std::size_t worker) {
                made.fetch_add(1);
                return Conn{worker};
            },
            [](Conn& c, int, taskdist::TaskContext& ctx) {
                ++c.uses;  // unsynchronised on purpose: only this worker touches it
                return std::make_pair(c.made_for, ctx.worker_index());
            }),
        {.workers = 3});
    std::vector<taskdist::TaskHandle<std::pair<std::size_t, std::size_t>>> hs;
    for (int i = 0; i < 300; ++i) hs.push_back(pool.submit(i));
    for (auto& h : hs) {
        const auto [made_for, ran_on] = await(h);
        CAPTURE(made_for, ran_on);
        CHECK(made_for == ran_on);
    }
    pool.shutdown();
    CHECK(made.load() == 3);
}

TEST_CASE("a factory that fails twice and then succeeds: the task waits for it and runs") {
    std::atomic<int> calls{0};
    auto replacements = std::make_shared<Replacements>();
    taskdist::WorkerPool<int, int> pool(
        taskdist::per_worker(
            [&calls] {
                if (calls.fetch_add(1) < 2) throw std::runtime_error("expected test output: no connection yet");
                return 100;
            },
            [](int& base, int x) { return base + x; }),
        {.workers = 1,
         .restart_backoff = 1ms,
         .broken_after = 5,
         .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});
    auto h = pool.submit(5);
    CHECK(await(h) == 105);
    CHECK(calls.load() == 3);
    const auto s = pool.stats();
    CHECK(s.per_worker[0].factory_failures == 2);
    CHECK(s.per_worker[0].available);
    const auto events = replacements->events();
    REQUIRE(events.size() == 2);
    CHECK(events[0].reason == taskdist::ReplaceReason::factory_failed);
    CHECK(events[1].count == 2);
}

TEST_CASE("a factory that always fails: queued tasks resolve with PoolBroken instead of waiting forever") {
    taskdist::WorkerPool<int, int> pool(
        taskdist::per_worker([]() -> int { throw std::runtime_error("expected test output: the database is gone"); },
                             [](int& base, int x) { return base + x; }),
        {.workers = 2, .restart_backoff = 1ms, .restart_backoff_max = 5ms, .broken_after = 2});
    std::vector<taskdist::TaskHandle<int>> hs;
    for (int i = 0; i < 5; ++i) hs.push_back(pool.submit(i));
    for (auto& h : hs) {
        REQUIRE(h.wait_for(patience));
        CHECK(outcome_of(h) == "PoolBroken");
    }
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.failed == 5);
    CHECK_FALSE(s.per_worker[0].available);
    check_all_resolved(s);
}

namespace {
/// A policy that puts every task on worker 0, available or not: legal (a
/// policy only has to name a worker that exists), and the worst case for a
/// down worker that tries to hand its tasks to others.
struct PinnedToFirst {
    template <class Item>
    class queue {
    public:
        queue(const PinnedToFirst&, std::size_t workers) : lanes_(workers) {}
        taskdist::Placement push(Item&& item, const taskdist::TaskInfo&, taskdist::WorkerSet) {
            lanes_.push(0, std::move(item));
            return taskdist::Placement::on(0);
        }
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        taskdist::PerWorkerQueues<Item> lanes_;
    };
};
} // namespace

TEST_CASE("a down worker whose policy puts its tasks straight back on it sleeps out its back-off, then runs "
          "them; shutdown_now() meanwhile returns") {
    // Before the fix the down worker handed its tasks on and got them back,
    // forever: the tasks never ran and shutdown_now() waited for it.
    for (const bool shut_down_early : {false, true}) {
        std::promise<void> down;
        std::atomic<bool> first{true};
        taskdist::WorkerPool<int, int, PinnedToFirst> pool(
            [](int x) {
                if (x < 0) throw taskdist::WorkerFault("expected test output: worker 0 breaks");
                return 2 * x;
            },
            {.workers = 2,
             .restart_backoff = 200ms,
             .restart_backoff_max = 200ms,
             .on_replace = [&](const taskdist::ReplaceEvent&) {
                 if (first.exchange(false)) down.set_value();
             }});
        auto broken = pool.submit(-1);
        REQUIRE(down.get_future().wait_for(patience) == std::future_status::ready);
        // Worker 0 is down for 200 ms and worker 1 is available: worker 0
        // tries to hand these on, and the policy puts them back.
        std::vector<taskdist::TaskHandle<int>> hs;
        for (int i = 0; i < 10; ++i) hs.push_back(pool.submit(i));
        if (shut_down_early) {
            std::promise<std::size_t> cancelled;
            auto f = cancelled.get_future();
            std::jthread t([&] { cancelled.set_value(pool.shutdown_now().never_started); });
            REQUIRE(f.wait_for(patience) == std::future_status::ready);
            const std::size_t n = f.get();
            std::size_t read_cancelled = 0;
            for (auto& h : hs) {
                REQUIRE(h.wait_for(patience));
                read_cancelled += outcome_of(h) == "TaskCancelled" ? 1 : 0;
            }
            CHECK(read_cancelled == n);
        } else {
            for (int i = 0; i < 10; ++i) CHECK(await(hs[static_cast<std::size_t>(i)]) == 2 * i);
        }
        CHECK(outcome_of(broken) == "WorkerFault");
    }
}

TEST_CASE("a handler that throws WorkerFault on its first attempt only: the retry succeeds on another worker") {
    // Per worker: the second call of a worker's factory is its rebuild (the
    // other worker's first build may come later, on a loaded machine).
    std::atomic<int> factory_calls[2] = {0, 0};
    std::promise<std::size_t> rebuilt;
    std::atomic<std::size_t> first_worker{99};
    taskdist::WorkerPool<int, std::size_t, taskdist::RoundRobin> pool(
        taskdist::per_worker(
            [&factory_calls, &rebuilt](std::size_t w) {
                if (w < 2 && factory_calls[w].fetch_add(1) == 1) rebuilt.set_value(w);
                return w;
            },
            [&first_worker](std::size_t& w, int, taskdist::TaskContext& ctx) -> std::size_t {
                if (ctx.attempt() == 1) {
                    first_worker.store(w);
                    throw taskdist::WorkerFault("expected test output: connection reset");
                }
                return w;
            }),
        {.workers = 2, .max_attempts = 2, .retry_backoff = 0ms, .restart_backoff = 1ms});
    auto h = pool.submit(1);
    const std::size_t second = await(h);
    CAPTURE(first_worker.load(), second);
    CHECK(second != first_worker.load());
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.retried == 1);
    CHECK(s.completed == 1);
    CHECK(s.per_worker[first_worker.load()].replaced_fault == 1);
    // The broken worker's state is rebuilt, after its back-off, by calling
    // its factory again on that worker.
    auto rebuilt_f = rebuilt.get_future();
    REQUIRE(arrives(rebuilt_f));
    CHECK(rebuilt_f.get() == first_worker.load());
}

TEST_CASE("retries follow the predicate: the task's own exceptions are not retried by default, "
          "a custom retry_if can retry them, and the last error reaches the handle") {
    std::atomic<int> attempts{0};
    auto handler = [&attempts](int, taskdist::TaskContext& ctx) -> int {
        attempts.fetch_add(1);
        throw std::runtime_error("attempt " + std::to_string(ctx.attempt()));
    };
    SECTION("default predicate") {
        taskdist::WorkerPool<int, int> pool(handler, {.workers = 2, .max_attempts = 3, .retry_backoff = 0ms});
        auto h = pool.submit(1);
        REQUIRE(h.wait_for(patience));
        CHECK(outcome_of(h) == "runtime_error");
        CHECK(attempts.load() == 1);
    }
    SECTION("retry everything") {
        taskdist::WorkerPool<int, int> pool(
            handler, {.workers = 2, .max_attempts = 3, .retry_if = [](const std::exception_ptr&) { return true; },
                      .retry_backoff = 1ms});
        auto h = pool.submit(1);
        REQUIRE(h.wait_for(patience));
        std::string message;
        try {
            (void)h.get();
        } catch (const std::runtime_error& e) {
            message = e.what();
        }
        CHECK(message == "attempt 3");
        CHECK(attempts.load() == 3);
        pool.wait_idle();
        CHECK(pool.stats().retried == 2);
        CHECK(pool.stats().failed == 1);
    }
}

TEST_CASE("a timed-out attempt that hangs is retried on a fresh attempt, which succeeds") {
    auto stuck = std::make_shared<Release>();
    auto replacements = std::make_shared<Replacements>();
    taskdist::WorkerPool<int, int> pool(
        [stuck](int x, taskdist::TaskContext& ctx) {
            if (ctx.attempt() == 1) stuck->wait_at_most(10s);  // ignores its stop token
            return x + static_cast<int>(ctx.attempt());
        },
        {.workers = 2,
         .hang_grace = 20ms,
         .quarantine_wait = 50ms,
         .max_attempts = 2,
         .retry_backoff = 0ms,
         .on_replace = [replacements](const taskdist::ReplaceEvent& e) { replacements->record(e); }});
    auto h = pool.submit(40, {.timeout = 20ms});
    CHECK(await(h) == 42);
    pool.wait_idle();
    // The retry can finish before hang_grace has passed for the first attempt, so the
    // replacement is awaited rather than assumed.
    REQUIRE(replacements->wait_for_count(1));
    const auto s = pool.stats();
    CHECK(s.retried == 1);
    CHECK(sum_replaced_hung(s) == 1);
    stuck->release();
}

TEST_CASE("a task cancelled after its timeout fired with a retry pending leaves nothing behind: the worker's next "
          "task, which has no timeout, returns its value") {
    std::promise<void> saw_stop;
    auto saw_stop_f = saw_stop.get_future();
    Release go_on;
    taskdist::WorkerPool<int, int> pool(
        [&saw_stop, &go_on](int x, taskdist::TaskContext& ctx) {
            if (x == 0) {
                (void)wait_for_stop(ctx.stop_token(), patience);  // the timeout's stop, a retry pending
                saw_stop.set_value();
                go_on.wait_at_most(patience);  // returns only once the test cancelled it
                return -1;
            }
            return x;
        },
        {.workers = 1, .hang_grace = 60s, .max_attempts = 2, .retry_backoff = 0ms});
    auto first = pool.submit(0, {.timeout = 20ms});
    REQUIRE(arrives(saw_stop_f));
    CHECK(first.cancel());
    go_on.release();
    auto next = pool.submit(7, {.max_attempts = 1});
    CHECK(outcome_of(next) == "value");
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.timed_out == 0);
    CHECK(s.retried == 0);
    CHECK(s.cancelled == 1);
    check_all_resolved(s);
}

TEST_CASE("a hung handler that returns while the supervisor is still replacing its thread leaves the task to the "
          "supervisor: the retry runs and resolves the handle, and the pool goes idle") {
    std::atomic<int> retry_if_calls{0};
    std::promise<void> in_check;
    auto in_check_f = in_check.get_future();
    Release handler_back;  // lets the hung handler return
    Release check_goes_on;  // lets the supervisor's hang check finish
    taskdist::WorkerPool<int, int> pool(
        [&handler_back](int x, taskdist::TaskContext& ctx) {
            if (ctx.attempt() > 1) return x + static_cast<int>(ctx.attempt());
            (void)wait_for_stop(ctx.stop_token(), patience);
            handler_back.wait_at_most(patience);  // returns only once declared hung
            return -1;
        },
        {.workers = 1,
         .hang_grace = 1ms,
         .quarantine_wait = patience,
         .max_attempts = 2,
         // Called when the timeout fires, then by the hang check, which holds
         // the hung attempt's item meanwhile.
         .retry_if =
             [&](const std::exception_ptr&) {
                 if (retry_if_calls.fetch_add(1) == 1) {
                     handler_back.release();
                     in_check.set_value();
                     check_goes_on.wait_at_most(patience);
                 }
                 return true;
             },
         .retry_backoff = 0ms});
    auto h = pool.submit(40, {.timeout = 20ms});
    REQUIRE(arrives(in_check_f));
    // The handler has returned: its thread must leave the item alone. Had it
    // dropped it, the handle would resolve (TaskAbandoned) within this wait.
    CHECK_FALSE(h.wait_for(2s));
    check_goes_on.release();
    CHECK(await(h) == 42);
    REQUIRE(pool.wait_idle_for(patience));
    const auto s = pool.stats();
    CHECK(s.retried == 1);
    CHECK(s.completed == 1);
    CHECK(sum_replaced_hung(s) == 1);
    check_all_resolved(s);
}

// ---- durations that mean "never" --------------------------------------------

TEST_CASE("hang_grace of nanoseconds::max() never declares a worker hung, even one slow to honour a cancel") {
    std::promise<void> started;
    auto started_f = started.get_future();
    std::promise<void> replaced;
    auto replaced_f = replaced.get_future();
    Release stuck;
    taskdist::WorkerPool<int, int> pool(
        [&started, &stuck](int x) {
            started.set_value();
            stuck.wait_at_most(patience);  // ignores its stop token
            return x;
        },
        {.workers = 1,
         .hang_grace = std::chrono::nanoseconds::max(),
         .on_replace = [&replaced](const taskdist::ReplaceEvent&) { replaced.set_value(); }});
    auto h = pool.submit(1);
    REQUIRE(arrives(started_f));
    CHECK(h.cancel());
    // An overflowed grace made the hang check due at once.
    CHECK(replaced_f.wait_for(1s) == std::future_status::timeout);
    stuck.release();
    pool.wait_idle();
    CHECK(sum_replaced_hung(pool.stats()) == 0);
}

TEST_CASE("scale_up_after of nanoseconds::max() never grows the pool, however long tasks wait") {
    Gate gate;
    std::promise<void> started;
    auto started_f = started.get_future();
    taskdist::ThreadPool pool({.workers = 1,
                               .min_workers = 1,
                               .max_workers = 4,
                               .scale_up_after = std::chrono::nanoseconds::max(),
                               .idle_timeout = 1s});
    auto opener = gate.open_on_exit();
    auto blocker = pool.submit([&] {
        started.set_value();
        gate.wait();
    });
    REQUIRE(arrives(started_f));
    std::vector<taskdist::TaskHandle<void>> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(pool.submit([] {}));
    // An overflowed period made the scale check run back to back, growing
    // the pool within microseconds.
    const auto until = Clock::now() + 1s;
    while (Clock::now() < until && pool.size() == 1) std::this_thread::sleep_for(10ms);
    CHECK(pool.size() == 1);
    gate.open();
    await(blocker);
    for (auto& h : queued) await(h);
}

TEST_CASE("a post() that times out reaches on_error as TaskTimeout and is counted") {
    std::promise<std::string> reported;
    auto reported_f = reported.get_future();
    taskdist::WorkerPool<int, void> pool(
        [](int, taskdist::TaskContext& ctx) {
            (void)wait_for_stop(ctx.stop_token(), patience);
        },
        {.workers = 1, .on_error = [&reported](std::exception_ptr e) {
             try {
                 std::rethrow_exception(e);
             } catch (const taskdist::TaskTimeout&) {
                 reported.set_value("TaskTimeout");
             } catch (...) {
                 reported.set_value("other");
             }
         }});
    pool.post(1, {.timeout = 10ms});
    REQUIRE(arrives(reported_f));
    CHECK(reported_f.get() == "TaskTimeout");
    pool.wait_idle();
    const auto s = pool.stats();
    CHECK(s.timed_out == 1);
    check_all_resolved(s);
}

TEST_CASE("bad fault-tolerance settings are rejected with std::invalid_argument") {
    auto h = [](int x) { return x; };
    CHECK_THROWS_AS((taskdist::WorkerPool<int, int>(h, {.workers = 1, .max_attempts = 0})), std::invalid_argument);
    CHECK_THROWS_AS((taskdist::WorkerPool<int, int>(h, {.workers = 1, .hang_grace = -1ms})), std::invalid_argument);
    taskdist::WorkerPool<int, int> pool(h, {.workers = 1});
    CHECK_THROWS_AS(pool.submit(1, {.timeout = -5ms}), std::invalid_argument);
    // Retries need a copy of the task for every attempt but the last.
    taskdist::WorkerPool<std::unique_ptr<int>, int> move_only([](std::unique_ptr<int> p) { return *p; },
                                                              {.workers = 1});
    CHECK_THROWS_AS(move_only.submit(std::make_unique<int>(1), {.max_attempts = 2}), std::invalid_argument);
    CHECK_THROWS_AS((taskdist::WorkerPool<std::unique_ptr<int>, int>([](std::unique_ptr<int> p) { return *p; },
                                                                      {.workers = 1, .max_attempts = 2})),
                    std::invalid_argument);
}

// ---- exactly once under random faults -----------------------------------------

namespace {

enum class Fault : std::uint8_t { value, throws, worker_fault, hang, cancel };

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::size_t fault_tasks_per_producer = 5'000;
#else
constexpr std::size_t fault_tasks_per_producer = 25'000;
#endif

} // namespace

TEST_CASE("exactly once under random faults: 4 producers, a mix of values, throws, WorkerFault, hangs past "
          "their timeout and cancels; each handle resolves once with the outcome its fault predicts") {
    constexpr std::size_t producers = 4;
    const std::size_t total = producers * fault_tasks_per_producer;
    struct Job {
        std::uint32_t id;
        Fault fault;
    };
    std::vector<std::atomic<std::uint32_t>> runs(total);
    taskdist::WorkerPool<Job, std::uint64_t> pool(
        [&runs](Job j, taskdist::TaskContext& ctx) -> std::uint64_t {
            runs[j.id].fetch_add(1, std::memory_order_relaxed);
            switch (j.fault) {
                case Fault::throws:
                    throw std::runtime_error("task failed");
                case Fault::worker_fault:
                    throw taskdist::WorkerFault("worker broken");
                case Fault::hang: {
                    // Cooperative: waits for its stop request (the timeout).
                    (void)wait_for_stop(ctx.stop_token(), 30s);
                    return 0;
                }
                default:
                    return std::uint64_t{j.id} * 3 + 1;
            }
        },
        {.workers = 4, .restart_backoff = 0ms});

    std::vector<taskdist::TaskHandle<std::uint64_t>> handles(total);
    std::vector<Fault> faults(total);
    std::vector<char> cancelled(total, 0);
    std::latch go(1);
    {
        std::vector<std::jthread> threads;
        for (std::size_t p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                std::mt19937 rng(static_cast<std::uint32_t>(1234 + p));
                std::uniform_int_distribution<int> pick(0, 9999);
                go.wait();
                for (std::size_t i = 0; i < fault_tasks_per_producer; ++i) {
                    const auto id = static_cast<std::uint32_t>(p * fault_tasks_per_producer + i);
                    const int r = pick(rng);
                    Fault f = r < 9400 ? Fault::value
                              : r < 9700 ? Fault::throws
                              : r < 9800 ? Fault::worker_fault
                              : r < 9806 ? Fault::hang
                                         : Fault::cancel;
                    faults[id] = f;
                    taskdist::SubmitOptions o;
                    if (f == Fault::hang) o.timeout = 2ms;
                    handles[id] = pool.submit(Job{id, f == Fault::cancel ? Fault::value : f}, o);
                    if (f == Fault::cancel) cancelled[id] = handles[id].cancel() ? 1 : 0;
                }
            });
        }
        go.count_down();
    }

    std::size_t wrong = 0, not_resolved = 0;
    std::string first_problem;
    for (std::uint32_t id = 0; id < total; ++id) {
        auto& h = handles[id];
        if (!h.wait_for(patience)) {
            ++not_resolved;
            continue;
        }
        std::string expected;
        switch (faults[id]) {
            case Fault::value:
                expected = "value";
                break;
            case Fault::throws:
                expected = "runtime_error";
                break;
            case Fault::worker_fault:
                expected = "WorkerFault";
                break;
            case Fault::hang:
                expected = "TaskTimeout";
                break;
            case Fault::cancel:
                expected = cancelled[id] ? "TaskCancelled" : "value";
                break;
        }
        std::string seen;
        if (expected == "value") {
            try {
                const std::uint64_t v = h.get();
                seen = v == std::uint64_t{id} * 3 + 1 ? "value" : "wrong value " + std::to_string(v);
            } catch (...) {
                seen = "an exception";
            }
        } else {
            seen = outcome_of(h);
        }
        if (seen != expected) {
            // NOLINTNEXTLINE(performance-inefficient-string-concatenation): once per test, on failure only
            if (wrong++ == 0) first_problem = "task " + std::to_string(id) + ": expected " + expected + ", saw " + seen;
        }
    }
    pool.wait_idle();
    std::size_t ran_twice = 0, cancelled_but_ran = 0;
    for (std::uint32_t id = 0; id < total; ++id) {
        const auto n = runs[id].load();
        if (n > 1) ++ran_twice;
        if (faults[id] == Fault::cancel && cancelled[id] && n > 0) {
            // Cancelled after it started is allowed; before it started is not
            // observable here, so only count it for the report.
            ++cancelled_but_ran;
        }
    }
    INFO("first problem: " << first_problem << "; cancelled tasks that had started: " << cancelled_but_ran);
    CHECK(not_resolved == 0);
    CHECK(wrong == 0);
    CHECK(ran_twice == 0);  // max_attempts 1: no task runs twice
    const auto s = pool.stats();
    check_all_resolved(s);
    CHECK(s.submitted == total);
}
