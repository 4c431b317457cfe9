// Soak test: producers submit a random mix of outcomes to pools of every
// distributor while a chaos thread resizes, pauses and resumes the pool and
// reads its statistics. Checks that every handle resolves once, with the
// outcome its fault predicts; that the pool's counters add up to exactly what
// the handles saw; that no thread outlives its pool; and that memory stays
// bounded. CTest runs it for a few seconds; run it by hand for hours:
//   soak --seconds 3600 --seed 7
// The seed fixes each task's fault; thread timing still varies run to run,
// which is the point.
#include <taskdist/taskdist.hpp>

#include "../examples/cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SOAK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SOAK_SANITIZED 1
#endif
#endif
#ifndef SOAK_SANITIZED
#define SOAK_SANITIZED 0
#endif

namespace {

using Clock = std::chrono::steady_clock;

// What a task is told to do, and so what its handle must end with.
enum class Fault : std::uint8_t {
    value,         // returns a value on attempt 1
    thrown,        // throws its own exception: failed, not retried
    fault_once,    // WorkerFault on attempt 1, a value on attempt 2
    fault_always,  // WorkerFault on every attempt: fails with WorkerFault
    timeout,       // runs past its timeout, stops when asked: TaskTimeout
    hang,          // ignores the stop request past hang_grace: TaskTimeout, worker replaced
    cancel,        // the producer cancels it a few submits later: TaskCancelled, or the value if it won
    caller_stop,   // the producer's stop_source fires a few submits later: likewise
    post_value,    // post(): completes, nobody waits
    post_throw,    // post(): throws, reported to on_error
};
constexpr std::size_t fault_kinds = 10;
constexpr std::array<const char*, fault_kinds> fault_names{
    "value", "thrown", "fault_once", "fault_always", "timeout", "hang", "cancel", "caller_stop", "post_value", "post_throw"};
// Weights out of 1000; hangs are rare because each one holds a thread for hang_grace.
constexpr std::array<unsigned, fault_kinds> fault_weights{640, 60, 50, 25, 30, 3, 80, 60, 45, 7};

constexpr auto hang_grace = std::chrono::milliseconds(20);
constexpr auto task_timeout = std::chrono::milliseconds(2);
constexpr auto patience = std::chrono::seconds(60);  // bounds how long a broken run hangs before it is called lost
constexpr std::size_t max_workers = 4;
constexpr std::size_t window = 256;  // outstanding handles per producer

struct Job {
    std::uint64_t id = 0;
    Fault fault = Fault::value;
    std::array<std::atomic<std::uint64_t>, fault_kinds>* runs = nullptr;
};

std::uint64_t value_of(std::uint64_t id, unsigned attempt) { return id * 4 + attempt; }

std::string thrown_text(std::uint64_t id) { return "soak: task " + std::to_string(id) + " threw"; }

std::size_t thread_count() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Threads:", 0) == 0) return std::stoul(line.substr(8));
    }
    return 0;
}

std::size_t rss_kib() {
    std::ifstream in("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    in >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

// Collects violations from every thread; the run goes on so one report shows them all.
class Verdict {
public:
    void check(bool ok, const std::string& what) {
        checked_.fetch_add(1, std::memory_order_relaxed);
        if (ok) return;
        std::lock_guard lock(mutex_);
        if (failures_.size() < 20) failures_.push_back(what);
        ++failed_;
    }
    std::uint64_t checked() const { return checked_.load(); }
    std::uint64_t failed() const {
        std::lock_guard lock(mutex_);
        return failed_;
    }
    void print() const {
        std::lock_guard lock(mutex_);
        for (const auto& f : failures_) std::printf("  VIOLATION: %s\n", f.c_str());
    }

private:
    std::atomic<std::uint64_t> checked_{0};
    mutable std::mutex mutex_;
    std::vector<std::string> failures_;
    std::uint64_t failed_ = 0;
};

// What the handles of one round ended with, by kind.
struct Tally {
    std::array<std::uint64_t, fault_kinds> injected{};
    std::uint64_t values = 0, failures = 0, timeouts = 0, cancels = 0;
    std::uint64_t cancel_lost_race = 0;  // cancel/caller_stop tasks that finished first
    std::uint64_t fault_survived = 0;    // fault_once tasks whose retry delivered
    std::uint64_t shutdown_cancelled = 0;  // handles cancelled by shutdown_now()
    std::uint64_t never_started = 0;       // tasks shutdown_now() handed back

    void add(const Tally& o) {
        for (std::size_t i = 0; i < fault_kinds; ++i) injected[i] += o.injected[i];
        values += o.values;
        failures += o.failures;
        timeouts += o.timeouts;
        cancels += o.cancels;
        cancel_lost_race += o.cancel_lost_race;
        fault_survived += o.fault_survived;
        shutdown_cancelled += o.shutdown_cancelled;
        never_started += o.never_started;
    }
};

struct Totals {
    Tally tally;
    std::uint64_t handler_runs = 0, resizes = 0, pauses = 0, snapshots = 0, rounds = 0;
    std::uint64_t abrupt_rounds = 0, rounds_drained = 0;
    std::uint64_t replaced_hung = 0, replaced_fault = 0, retried = 0;
    std::array<std::uint64_t, 5> rounds_by_distributor{};
};

struct Config {
    double seconds = 10;
    long seed = 1;
    long producers = 3;
};

struct Outstanding {
    Job job;
    taskdist::TaskHandle<std::uint64_t> handle;
    std::optional<std::stop_source> stop;  // caller_stop tasks only
    std::uint64_t fire_at = 0;             // cancel/caller_stop: acted on once this many tasks were submitted
    bool fired = false;
    bool cancel_won = false;               // cancel() returned true
};

template <class Dist>
class Round {
public:
    using Pool = taskdist::WorkerPool<Job, std::uint64_t, Dist>;

    Round(const Config& cfg, std::uint64_t round_seed, Clock::duration slice, Verdict& verdict)
        : cfg_(cfg), seed_(round_seed), slice_(slice), v_(verdict) {}

    void run(Totals& totals, std::size_t base_threads) {
        std::mt19937_64 rng(seed_);
        taskdist::PoolOptions o;
        o.name = "soak";
        o.workers = 1 + rng() % max_workers;
        o.max_workers = max_workers;
        o.max_attempts = 2;
        // Only WorkerFault is retried, so each kind has one predictable outcome.
        o.retry_if = [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const taskdist::WorkerFault&) {
                return true;
            } catch (...) {
                return false;
            }
        };
        o.retry_backoff = std::chrono::microseconds(100);
        o.hang_grace = hang_grace;
        o.quarantine_wait = std::chrono::seconds(5);
        o.restart_backoff = std::chrono::microseconds(100);
        o.restart_backoff_max = std::chrono::milliseconds(1);
        o.broken_after = 1'000'000;  // fault_always may hit every worker at once; that is not a broken pool
        o.on_error = [this](std::exception_ptr) { post_errors_.fetch_add(1, std::memory_order_relaxed); };
        if (rng() % 2) {
            o.queue_capacity = 64 + rng() % 256;
            o.overflow = taskdist::Overflow::block;
        }
        // One round in three ends with shutdown_now() while producers still submit.
        abrupt_ = rng() % 3 == 0;
        {
            Pool pool([this](Job j, taskdist::TaskContext& ctx) { return handle(j, ctx); }, o);
            std::atomic<bool> producing{true};
            std::vector<Tally> tallies(static_cast<std::size_t>(cfg_.producers));
            std::thread chaos([&] { run_chaos(pool, producing, totals, rng()); });
            std::vector<std::thread> producers;
            const auto until = Clock::now() + slice_;
            for (std::size_t p = 0; p < tallies.size(); ++p) {
                producers.emplace_back([&, p, s = rng()] { produce(pool, p, s, until, tallies[p]); });
            }
            std::optional<taskdist::ShutdownReport<Job>> report;
            if (abrupt_) {
                std::this_thread::sleep_until(until);  // the round's time slice, not a synchronisation
                producing.store(false);
                chaos.join();
                report = pool.shutdown_now();
                for (auto& t : producers) t.join();
            } else {
                for (auto& t : producers) t.join();
                producing.store(false);
                chaos.join();
                if (pool.paused()) pool.resume();
                v_.check(pool.wait_idle_for(patience), "the pool did not become idle: a task was lost in it");
            }
            Tally round;
            for (const auto& t : tallies) round.add(t);
            check_stats(pool.stats(), round, report ? &*report : nullptr);
            if (!abrupt_) check_threads(pool, base_threads);
            ++(abrupt_ ? totals.abrupt_rounds : totals.rounds_drained);
            const auto s = pool.stats();
            for (const auto& w : s.per_worker) {
                totals.replaced_hung += w.replaced_hung;
                totals.replaced_fault += w.replaced_fault;
            }
            totals.retried += s.retried;
            totals.tally.add(round);
            pool.shutdown();
        }
        // Every handler has returned: the run counts are final.
        check_runs(totals);
        wait_threads(base_threads);
        v_.check(thread_count() == base_threads, "threads outlived their pool: " + std::to_string(thread_count()) +
                                                     " alive, " + std::to_string(base_threads) + " before it");
    }

private:
    std::uint64_t handle(const Job& j, taskdist::TaskContext& ctx) {
        j.runs->at(static_cast<std::size_t>(j.fault)).fetch_add(1, std::memory_order_relaxed);
        const unsigned attempt = ctx.attempt();
        switch (j.fault) {
            case Fault::value:
            case Fault::post_value:
                break;
            case Fault::thrown:
            case Fault::post_throw:
                throw std::runtime_error(thrown_text(j.id));
            case Fault::fault_once:
                if (attempt == 1) throw taskdist::WorkerFault("soak: injected worker fault");
                break;
            case Fault::fault_always:
                throw taskdist::WorkerFault("soak: injected worker fault");
            case Fault::timeout:
                // Cooperative: returns once the pool asks it to stop.
                for (auto until = Clock::now() + patience; !ctx.stop_requested() && Clock::now() < until;) {
                    std::this_thread::yield();
                }
                break;
            case Fault::hang:
                // Deaf to the stop request until well past hang_grace.
                std::this_thread::sleep_for(task_timeout + 3 * hang_grace);
                break;
            case Fault::cancel:
            case Fault::caller_stop:
                // Runs long enough that the cancel often lands while it runs.
                for (auto until = Clock::now() + std::chrono::microseconds(200); !ctx.stop_requested() && Clock::now() < until;) {
                    std::this_thread::yield();
                }
                break;
        }
        return value_of(j.id, attempt);
    }

    void produce(Pool& pool, std::size_t p, std::uint64_t seed, Clock::time_point until, Tally& tally) {
        std::mt19937_64 rng(seed);
        std::discrete_distribution<unsigned> pick(fault_weights.begin(), fault_weights.end());
        std::deque<Outstanding> out;
        std::uint64_t submitted = 0;
        const std::uint64_t id_base = static_cast<std::uint64_t>(p) << 40;
        while (Clock::now() < until) {
            Job job{id_base + submitted++, static_cast<Fault>(pick(rng)), &runs_};
            taskdist::SubmitOptions so;
            so.priority = static_cast<int>(rng() % 4);
            so.key = rng() % 64;
            if (job.fault == Fault::post_value || job.fault == Fault::post_throw) {
                if (!offer([&] { pool.post(job, so); })) break;
                ++tally.injected[static_cast<std::size_t>(job.fault)];
                continue;
            }
            Outstanding o;
            o.job = job;
            if (job.fault == Fault::timeout || job.fault == Fault::hang) so.timeout = task_timeout;
            if (job.fault == Fault::caller_stop) {
                o.stop.emplace();
                so.stop_token = o.stop->get_token();
            }
            o.fire_at = submitted + rng() % 8;
            if (!offer([&] { o.handle = pool.submit(job, so); })) break;
            ++tally.injected[static_cast<std::size_t>(job.fault)];
            out.push_back(std::move(o));
            // Cancels fire some submits later, so that some hit queued tasks,
            // some running ones, and some finished ones.
            for (auto& x : out) {
                if (!x.fired && x.fire_at <= submitted) fire(x);
            }
            while (out.size() > window) {
                if (!out.front().fired) fire(out.front());
                verify(out.front(), tally);
                out.pop_front();
            }
        }
        for (auto& x : out) {
            if (!x.fired) fire(x);
        }
        while (!out.empty()) {
            verify(out.front(), tally);
            out.pop_front();
        }
    }

    // Runs one submit or post; false once the pool is shut down, which only
    // an abrupt round may do.
    template <class F>
    bool offer(F&& f) {
        try {
            f();
            return true;
        } catch (const taskdist::PoolClosed&) {
            v_.check(abrupt_, "PoolClosed from a pool nobody shut down");
            return false;
        }
    }

    static void fire(Outstanding& x) {
        x.fired = true;
        if (x.job.fault == Fault::cancel) {
            x.cancel_won = x.handle.cancel();
        } else if (x.job.fault == Fault::caller_stop) {
            x.stop->request_stop();
        }
    }

    // Reads one handle and checks its outcome against the task's fault.
    void verify(Outstanding& o, Tally& tally) {
        const Job& j = o.job;
        std::string who = "task " + std::to_string(j.id) + " (" + fault_names[static_cast<std::size_t>(j.fault)] + ")";
        if (!o.handle.wait_for(patience)) {
            v_.check(false, who + " never resolved: lost");
            return;
        }
        enum class Got { value, thrown, fault, timeout, cancelled, other } got = Got::other;
        std::uint64_t value = 0;
        std::string what;
        try {
            value = o.handle.get();
            got = Got::value;
        } catch (const taskdist::WorkerFault&) {
            got = Got::fault;
        } catch (const taskdist::TaskTimeout&) {
            got = Got::timeout;
        } catch (const taskdist::TaskCancelled&) {
            got = Got::cancelled;
        } catch (const taskdist::Error& e) {
            what = e.what();
        } catch (const std::runtime_error& e) {
            got = Got::thrown;
            what = e.what();
        }
        static constexpr std::array<const char*, 6> got_names{"a value", "its exception", "WorkerFault", "TaskTimeout",
                                                              "TaskCancelled", "another error"};
        if (got == Got::value && what.empty()) what = std::to_string(value);
        who += ", got " + std::string(got_names[static_cast<std::size_t>(got)]) + (what.empty() ? "" : " (" + what + ")");
        v_.check(!o.handle.valid(), who + ": the handle is still valid after get()");
        if (abrupt_ && got == Got::cancelled) {
            // shutdown_now() cancels what is queued and stops what runs: any task may end so.
            ++tally.cancels;
            ++tally.shutdown_cancelled;
            return;
        }
        switch (got) {
            case Got::value: ++tally.values; break;
            case Got::thrown:
            case Got::fault: ++tally.failures; break;
            case Got::timeout: ++tally.timeouts; break;
            case Got::cancelled: ++tally.cancels; break;
            case Got::other: break;
        }
        switch (j.fault) {
            case Fault::value:
                v_.check(got == Got::value && value == value_of(j.id, 1), who + ": wrong value or outcome");
                break;
            case Fault::thrown:
                v_.check(got == Got::thrown && what == thrown_text(j.id), who + ": expected its own exception, got '" + what + "'");
                break;
            case Fault::fault_once:
                v_.check(got == Got::value && value == value_of(j.id, 2), who + ": the retry did not deliver");
                if (got == Got::value) ++tally.fault_survived;
                break;
            case Fault::fault_always:
                v_.check(got == Got::fault, who + ": expected WorkerFault");
                break;
            case Fault::timeout:
            case Fault::hang:
                // shutdown_now() asks running tasks to stop: one that then
                // returns before its timeout fires keeps its value.
                v_.check(got == Got::timeout || (abrupt_ && got == Got::value && value == value_of(j.id, 1)),
                         who + ": expected TaskTimeout");
                break;
            case Fault::cancel:
                if (o.cancel_won) {
                    v_.check(got == Got::cancelled, who + ": cancel() returned true but the task did not read cancelled");
                } else {
                    v_.check(got == Got::value && value == value_of(j.id, 1), who + ": cancel() lost, so the value must be there");
                    ++tally.cancel_lost_race;
                }
                break;
            case Fault::caller_stop:
                v_.check(got == Got::cancelled || (got == Got::value && value == value_of(j.id, 1)),
                         who + ": expected TaskCancelled or its value");
                if (got == Got::value) ++tally.cancel_lost_race;
                break;
            case Fault::post_value:
            case Fault::post_throw:
                break;
        }
    }

    void run_chaos(Pool& pool, const std::atomic<bool>& producing, Totals& totals, std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        while (producing.load()) {
            switch (rng() % 4) {
                case 0:
                    pool.resize(1 + rng() % max_workers);
                    ++totals.resizes;
                    break;
                case 1:
                    pool.pause();
                    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
                    pool.resume();
                    ++totals.pauses;
                    break;
                case 2: {
                    const auto s = pool.stats();
                    ++totals.snapshots;
                    // Counters are read one by one while tasks move, so only
                    // what holds within one summary is checked mid-run; the
                    // exact sums are checked at the end.
                    for (const auto* l : {&s.wait, &s.run}) {
                        v_.check(l->p50 <= l->p90 && l->p90 <= l->p99 && l->p99 <= l->max,
                                 "mid-run: latency percentiles out of order");
                    }
                    v_.check(s.workers >= 1 && s.workers <= max_workers, "mid-run: worker count out of range");
                    break;
                }
                default:
                    (void)pool.wait_idle_for(std::chrono::microseconds(100));
                    break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100 + rng() % 900));
        }
    }

    void check_stats(const taskdist::PoolStats& s, Tally& t, const taskdist::ShutdownReport<Job>* report) {
        auto n = [&](Fault f) { return t.injected[static_cast<std::size_t>(f)]; };
        const std::uint64_t posts = n(Fault::post_value) + n(Fault::post_throw);
        std::uint64_t tasks = 0;
        for (std::size_t i = 0; i < fault_kinds; ++i) tasks += t.injected[i];
        auto eq = [&](std::uint64_t a, std::uint64_t b, const char* what) {
            v_.check(a == b, std::string("stats: ") + what + ": " + std::to_string(a) + " != " + std::to_string(b));
        };
        auto between = [&](std::uint64_t a, std::uint64_t lo, std::uint64_t hi, const char* what) {
            v_.check(lo <= a && a <= hi, std::string("stats: ") + what + ": " + std::to_string(a) + " not in [" +
                                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
        };
        eq(s.submitted, tasks, "submitted vs tasks accepted");
        eq(s.submitted, s.completed + s.failed + s.timed_out + s.cancelled + s.rejected + s.queued + s.running,
           "submitted vs the sum of outcomes");
        eq(s.queued + s.running, 0, "queued + running at the end");
        eq(s.timed_out, t.timeouts, "timed_out vs timeouts read");
        eq(s.rejected, 0, "rejected");
        if (report) {
            // Posts have no handle: shutdown_now() may have cancelled any of them.
            eq(report->tasks.size(), report->never_started, "tasks handed back vs never started");
            t.never_started += report->never_started;
            between(s.completed, t.values, t.values + n(Fault::post_value), "completed vs values read");
            between(s.failed, t.failures, t.failures + n(Fault::post_throw), "failed vs failures read");
            between(s.cancelled, t.cancels, t.cancels + posts, "cancelled vs cancels read");
            between(report->never_started, 0, s.cancelled, "never started vs cancelled");
            v_.check(post_errors_.load() >= s.failed - t.failures, "stats: a failed post did not reach on_error");
        } else {
            eq(s.completed, t.values + n(Fault::post_value), "completed vs values read");
            eq(s.failed, t.failures + n(Fault::post_throw), "failed vs failures read");
            eq(s.cancelled, t.cancels, "cancelled vs cancels read");
            eq(post_errors_.load(), n(Fault::post_throw), "on_error calls vs failed posts");
        }
        std::uint64_t per_completed = 0, per_failed = 0, rebuilt = 0, hung = 0;
        for (const auto& w : s.per_worker) {
            per_completed += w.completed;
            per_failed += w.failed;
            rebuilt += w.replaced_fault;
            hung += w.replaced_hung;
            // The distributor's own per-worker counts (a lost update in a
            // lane's count once left `queued` above 0 here).
            if (!report) {
                eq(w.queued, 0, "a worker's queued once idle");
                eq(w.running, 0, "a worker's running once idle");
            }
        }
        // Each WorkerFault rebuilds its worker once and, with attempts left, is
        // retried once (unless the pool was shut down first).
        const std::uint64_t faults = n(Fault::fault_once) + 2 * n(Fault::fault_always);
        if (report) {
            between(rebuilt, 0, faults, "workers rebuilt vs WorkerFaults thrown");
        } else {
            eq(rebuilt, faults, "workers rebuilt vs WorkerFaults thrown");
            eq(s.retried, n(Fault::fault_once) + n(Fault::fault_always), "retried vs tasks that threw WorkerFault");
        }
        // A hang is replaced unless it returned before the supervisor looked; a
        // slow machine may also catch a cooperative handler late.
        v_.check(hung <= n(Fault::hang) + n(Fault::timeout) + n(Fault::cancel) + n(Fault::caller_stop),
                 "stats: more hung workers replaced than tasks that could hang");
        eq(per_completed + s.ran_on_caller + s.ran_inline, s.completed, "per-worker completed vs pool completed");
        v_.check(per_failed <= s.failed + s.retried, "stats: per-worker failures exceed failed + retried attempts");
        v_.check(s.wait.count <= s.submitted + s.retried, "stats: more queue-wait samples than tasks queued");
        expected_ = t;
    }

    void check_runs(Totals& totals) {
        const Tally& t = expected_;
        auto runs = [&](Fault f) { return runs_[static_cast<std::size_t>(f)].load(); };
        auto n = [&](Fault f) { return t.injected[static_cast<std::size_t>(f)]; };
        // After shutdown_now() a task may not have run at all: only the upper
        // bound holds. Otherwise each kind ran exactly as often as it implies.
        auto eq = [&](Fault f, std::uint64_t want) {
            const bool ok = abrupt_ ? runs(f) <= want : runs(f) == want;
            v_.check(ok, std::string("runs of ") + fault_names[static_cast<std::size_t>(f)] + ": " +
                             std::to_string(runs(f)) + (abrupt_ ? ", at most " : ", expected ") + std::to_string(want));
        };
        eq(Fault::value, n(Fault::value));
        eq(Fault::thrown, n(Fault::thrown));
        eq(Fault::fault_once, 2 * n(Fault::fault_once));
        eq(Fault::fault_always, 2 * n(Fault::fault_always));
        eq(Fault::timeout, n(Fault::timeout));
        eq(Fault::hang, n(Fault::hang));
        eq(Fault::post_value, n(Fault::post_value));
        eq(Fault::post_throw, n(Fault::post_throw));
        // A task cancelled while queued never runs; one that won the race ran once.
        v_.check(runs(Fault::cancel) <= n(Fault::cancel), "cancel tasks ran more often than submitted");
        v_.check(runs(Fault::caller_stop) <= n(Fault::caller_stop), "caller_stop tasks ran more often than submitted");
        for (const auto& r : runs_) totals.handler_runs += r.load();
    }

    void check_threads(Pool& pool, std::size_t base) {
        // Threads of retired workers and hung handlers exit on their own time;
        // their count is polled, bounded by patience.
        const auto expected_max = base + pool.size() + 1;  // + the supervisor, started by the first timer
        const auto until = Clock::now() + patience;
        while (thread_count() > expected_max && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const auto n = thread_count();
        v_.check(n >= base + pool.size() && n <= expected_max,
                 "threads: " + std::to_string(n - base) + " for a pool of " + std::to_string(pool.size()) + " workers");
    }

    static void wait_threads(std::size_t base) {
        const auto until = Clock::now() + patience;
        while (thread_count() > base && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    const Config& cfg_;
    std::uint64_t seed_;
    Clock::duration slice_;
    Verdict& v_;
    std::array<std::atomic<std::uint64_t>, fault_kinds> runs_{};
    std::atomic<std::uint64_t> post_errors_{0};
    Tally expected_;
    bool abrupt_ = false;
};

constexpr std::array<const char*, 5> distributor_names{"SharedQueue", "RoundRobin", "LeastBusy", "Priority", "Sticky"};

void run_round(std::size_t which, const Config& cfg, std::uint64_t seed, Clock::duration slice, Verdict& v,
               Totals& totals, std::size_t base) {
    switch (which) {
        case 0: Round<taskdist::SharedQueue>(cfg, seed, slice, v).run(totals, base); break;
        case 1: Round<taskdist::RoundRobin>(cfg, seed, slice, v).run(totals, base); break;
        case 2: Round<taskdist::LeastBusy>(cfg, seed, slice, v).run(totals, base); break;
        case 3: Round<taskdist::Priority>(cfg, seed, slice, v).run(totals, base); break;
        default: Round<taskdist::Sticky>(cfg, seed, slice, v).run(totals, base); break;
    }
    ++totals.rounds_by_distributor[which];
    ++totals.rounds;
}

/// Ends the process with a verdict if the run overstays its budget by far:
/// a hang (a task never resolving, a pool never shutting down) is a failure
/// this program must report, not wait out.
class Watchdog {
public:
    explicit Watchdog(Clock::duration limit) {
        thread_ = std::thread([this, until = Clock::now() + limit] {
            std::unique_lock lock(mutex_);
            if (cv_.wait_until(lock, until, [this] { return done_; })) return;
            std::printf("soak: FAIL (hung: still running at twice its budget plus %lld s; a task or a shutdown "
                        "never finished)\n",
                        static_cast<long long>(grace.count()));
            std::fflush(stdout);
            std::_Exit(3);
        });
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    static constexpr auto grace = std::chrono::seconds(120);

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

int soak(const Config& cfg) {
    Verdict v;
    Totals totals;
    const auto start = Clock::now();
    const auto budget = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
    // A round waits at most `patience` for a handle; a healthy run ends
    // within its budget plus one round. Twice the budget plus two minutes
    // is a hang.
    const Watchdog watchdog(2 * budget + Watchdog::grace);
    // Rounds of about a tenth of the budget, so every distributor gets at least two.
    const auto slice = std::clamp<Clock::duration>(budget / 10, std::chrono::milliseconds(50), std::chrono::seconds(2));
    // Sanitizer runtimes start a helper thread of their own with the first
    // thread the program makes: count the threads after one pool has come and gone.
    {
        taskdist::WorkerPool<int, int> warm([](int x) { return x; }, {.workers = 1});
        (void)warm.submit(1).get();
    }
    const std::size_t base = thread_count();
    std::size_t rss_first = 0, rss_peak = 0, rss_last = 0;
    std::uint64_t seed = static_cast<std::uint64_t>(cfg.seed);
    for (std::size_t round = 0; round < distributor_names.size() || Clock::now() - start < budget; ++round) {
        run_round(round % distributor_names.size(), cfg, seed + round * 0x9e3779b97f4a7c15ULL, slice, v, totals, base);
        rss_last = rss_kib();
        if (round == distributor_names.size() - 1) rss_first = rss_last;  // after each distributor has warmed up
        rss_peak = std::max(rss_peak, rss_last);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    // Memory: after every distributor has run once, RSS may grow by allocator
    // noise but not with the number of tasks. Sanitizers keep freed memory
    // in quarantine on purpose, and check leaks themselves at exit.
    const std::size_t rss_allowance = rss_first / 4 + std::size_t{32} * 1024;
    if (!SOAK_SANITIZED) {
        v.check(rss_peak <= rss_first + rss_allowance, "memory grew from " + std::to_string(rss_first / 1024) + " MiB to " +
                                                            std::to_string(rss_peak / 1024) + " MiB");
    }

    const Tally& t = totals.tally;
    std::uint64_t tasks = 0;
    for (auto n : t.injected) tasks += n;
    auto inj = [&](Fault f) { return t.injected[static_cast<std::size_t>(f)]; };
    std::printf("soak: seed %ld, %.1f s, %ld producers, %" PRIu64 " rounds (", cfg.seed, elapsed, cfg.producers,
                totals.rounds);
    for (std::size_t i = 0; i < distributor_names.size(); ++i) {
        std::printf("%s%s %" PRIu64, i ? ", " : "", distributor_names[i], totals.rounds_by_distributor[i]);
    }
    std::printf(")\n");
    std::printf("  tasks: %" PRIu64 " submitted (%" PRIu64 " posted), %" PRIu64 " handler runs, %" PRIu64 " retries\n",
                tasks, inj(Fault::post_value) + inj(Fault::post_throw), totals.handler_runs, totals.retried);
    std::printf("  outcomes read: %" PRIu64 " values, %" PRIu64 " failures, %" PRIu64 " timeouts, %" PRIu64 " cancelled\n",
                t.values, t.failures, t.timeouts, t.cancels);
    std::printf("  faults injected and survived: %" PRIu64 " thrown, %" PRIu64 " worker faults (%" PRIu64
                " recovered by a retry, %" PRIu64 " failed as injected; %" PRIu64 " workers rebuilt), %" PRIu64
                " timeouts, %" PRIu64 " hangs (%" PRIu64 " workers replaced), %" PRIu64 " cancels and %" PRIu64
                " caller stops (%" PRIu64 " finished first)\n",
                inj(Fault::thrown) + inj(Fault::post_throw), inj(Fault::fault_once) + inj(Fault::fault_always),
                t.fault_survived, inj(Fault::fault_always), totals.replaced_fault, inj(Fault::timeout),
                inj(Fault::hang), totals.replaced_hung, inj(Fault::cancel), inj(Fault::caller_stop), t.cancel_lost_race);
    std::printf("  shutdowns: %" PRIu64 " rounds drained, %" PRIu64 " ended by shutdown_now() mid-stream (%" PRIu64
                " handles read TaskCancelled in those rounds, %" PRIu64 " tasks handed back unstarted)\n",
                totals.rounds_drained, totals.abrupt_rounds, t.shutdown_cancelled, t.never_started);
    std::printf("  chaos: %" PRIu64 " resizes, %" PRIu64 " pauses, %" PRIu64 " statistics snapshots\n", totals.resizes,
                totals.pauses, totals.snapshots);
    if (SOAK_SANITIZED) {
        std::printf("  memory: RSS %zu MiB at the end (bound not checked under a sanitizer)\n", rss_last / 1024);
    } else {
        std::printf("  memory: RSS %zu MiB after the first round of each distributor, at most %zu MiB (bound %zu MiB)\n",
                    rss_first / 1024, rss_peak / 1024, (rss_first + rss_allowance) / 1024);
    }
    std::printf("  threads: back to %zu after every pool\n", base);
    std::printf("  invariants checked: %" PRIu64 ", violated: %" PRIu64 "\n", v.checked(), v.failed());
    v.print();
    const bool ok = v.failed() == 0;
    std::printf("soak: %s (seed %ld, %" PRIu64 " tasks, %" PRIu64 " checks)\n", ok ? "PASS" : "FAIL", cfg.seed, tasks,
                v.checked());
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) try {
    Config cfg;
    cli::Parser p;
    p.real("--seconds", cfg.seconds, 0, 7 * 24 * 3600.0).whole("--seed", cfg.seed, 0, 1L << 62).whole("--producers", cfg.producers, 1, 64);
    return cli::run("soak", p, argc, argv, [&] { return soak(cfg); });
} catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
    return 1;
}
