// taskdist::redis::Worker: a process's share of a queue. It joins the
// queue's consumer group, takes as many tasks as it has free slots
// (XREADGROUP, highest priority first), runs them on a local WorkerPool (so
// every distributor, timeout and statistic of the core applies), and
// completes them on the server.
//
//   taskdist::redis::Worker<std::string, std::size_t> worker(
//       [](const std::string& s) { return s.size(); }, {.queue = "words"});
//   worker.run(stop_token);   // serves until asked to stop
//
// Leases: a task held by a worker is heartbeated (its idle time reset
// without counting a delivery) while it runs. A worker with free slots
// reclaims tasks idle longer than `lease` (their worker died) and runs them;
// a task delivered more than `max_deliveries` times goes to the dead-letter
// stream and its client gets DeadLettered. A message that does not decode is
// dead-lettered with the reason, and the worker goes on.
//
// Stopping: run() returns once it has stopped taking tasks, handed back the
// ones it took but never started (others take them at once, no lease wait),
// and completed the ones running (for at most `drain_timeout`).
//
// Thread-safety: run() on one thread at a time; counters() from any thread.
// The worker keeps two connections: its loop's and its completer's (the
// local pool's threads never touch Redis).
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../worker_pool.hpp"
#include "codec.hpp"
#include "connection.hpp"
#include "protocol.hpp"

namespace taskdist::redis {

struct WorkerOptions {
    Endpoint redis{};
    std::string queue = "default";
    /// Priority levels of the queue: must match the clients'.
    int priorities = 3;
    /// This worker's name in the group; empty: "<host>-<pid>". Must be unique
    /// among live workers of the queue.
    std::string consumer = {};
    /// Tasks waiting or running in this process at once; 0: the local pool's
    /// worker count (nothing waits here while another worker could run it).
    /// A finished task whose result the completer has not yet delivered takes
    /// no slot (the threads work on during that round trip), but the worker
    /// holds at most twice this many tasks; for tasks much shorter than a
    /// round trip to Redis, more slots keep the threads busy. When the worker
    /// is idle, its one blocking read over all levels may take this many
    /// from each level; those wait in the local pool. So may a read when a
    /// level above the one it last took tasks from has filled since: it takes
    /// this many from that level and from the one below.
    std::size_t slots = 0;
    /// A held task idle this long (no heartbeat) may be reclaimed by others.
    std::chrono::milliseconds lease{10'000};
    /// How often held tasks are heartbeated; 0: lease / 3.
    std::chrono::milliseconds heartbeat{0};
    /// Deliveries after which a task is dead-lettered instead of run again.
    std::uint32_t max_deliveries = 3;
    /// Longest blocking read; also how quickly run() notices a stop.
    std::chrono::milliseconds block{100};
    /// How long results are kept for duplicate submissions.
    std::chrono::milliseconds result_ttl = std::chrono::hours(1);
    /// An encoded result (or error text) longer than this is not sent: the
    /// task completes with Status::error saying so (its caller gets
    /// RemoteTaskError). Keep it under the server's proto-max-bulk-len (512
    /// MB by default): a result the server refuses is retried, and this
    /// worker's later results wait behind it.
    std::size_t max_result_bytes = std::size_t{64} << 20;
    /// After a task's timeout, how long its handler may keep running before
    /// the worker reports it timed out without waiting any more.
    std::chrono::milliseconds hang_grace{1000};
    /// At stop, how long run() waits for running tasks to complete.
    std::chrono::milliseconds drain_timeout{30'000};
    /// Told what the worker takes, completes, reclaims and dead-letters, one
    /// line each; empty: silent. Called from the worker's threads.
    std::function<void(const std::string&)> log = {};
    /// The local pool. max_attempts is forced to 1: a task that fails here
    /// reports its error; redelivery is the queue's business.
    PoolOptions pool{};
};

/// What a worker has done so far.
struct WorkerCounters {
    std::uint64_t taken = 0;          ///< deliveries started here (reclaimed ones included)
    std::uint64_t reclaimed = 0;      ///< of those, taken over from a worker that went silent
    std::uint64_t completed = 0;      ///< results delivered (ok, error or timeout)
    std::uint64_t superseded = 0;     ///< results dropped: the lease was lost, or a result existed
    std::uint64_t dead_lettered = 0;  ///< moved to the dead-letter stream (undecodable or too many deliveries)
    std::uint64_t handed_back = 0;    ///< taken but never started, returned at stop
    std::uint64_t redis_errors = 0;   ///< commands that failed (the worker retried)
};

template <class Task, class Result, class Dist = SharedQueue>
    requires Encodable<Task> && (std::is_void_v<Result> || Encodable<Result>)
class Worker {
public:
    /// `handler` is called as handler(Task) or handler(Task, TaskContext&)
    /// and returns Result.
    template <class Handler>
    Worker(Handler handler, WorkerOptions options)
        : options_(normalize(std::move(options))),
          keys_(options_.queue),
          loop_conn_(options_.redis),
          done_conn_(options_.redis),
          pool_(
              [this, h = std::move(handler)](Job job, TaskContext& ctx) mutable { execute(h, job, ctx); },
              local_options(options_)) {
        slots_ = options_.slots ? options_.slots : pool_.size();
    }

    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker() { stop_completer(); }

    const std::string& consumer() const noexcept { return options_.consumer; }

    /// Serves the queue until `stop` is requested, then stops as described
    /// at the top. Redis errors are retried (with back-off), never thrown.
    void run(std::stop_token stop) {
        completer_ = std::jthread([this](std::stop_token st) { complete_loop(st); });
        auto last_heartbeat = Clock::now();
        auto last_reclaim = Clock::time_point{};
        bool groups = false;
        int failures = 0;
        while (!stop.stop_requested()) {
            try {
                if (!groups) {
                    ensure_groups(loop_conn_, keys_, options_.priorities);
                    groups = true;
                }
                const auto now = Clock::now();
                if (now - last_heartbeat >= options_.heartbeat) {
                    heartbeat();
                    last_heartbeat = now;
                }
                expire_hung();
                std::size_t free = free_slots();
                if (free > 0 && now - last_reclaim >= options_.lease / 4) {
                    free -= reclaim(free);
                    last_reclaim = now;
                }
                if (free == 0) {
                    wait_for_slot(std::min(options_.block, options_.heartbeat));
                    continue;
                }
                read_new(free);
                failures = 0;
            } catch (const RedisError& e) {
                counters_add(&WorkerCounters::redis_errors);
                say(std::string("redis error, retrying: ") + e.what());
                groups = false;  // a server that restarted empty has lost them
                const auto pause = std::chrono::milliseconds(std::min(1000, 50 << std::min(failures++, 4)));
                for (auto until = Clock::now() + pause; Clock::now() < until && !stop.stop_requested();) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
            } catch (const std::exception& e) {
                // Not Redis (out of memory, a codec's surprise): report it and go on.
                say(std::string("error, going on: ") + e.what());
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
        shut_down();
    }

    WorkerCounters counters() const {
        std::lock_guard lock(counters_mutex_);
        return counters_;
    }

    /// The local pool's statistics.
    PoolStats pool_stats() const { return pool_.stats(); }

private:
    using Clock = std::chrono::steady_clock;

    /// One delivery held by this worker.
    struct InFlight {
        int priority = 0;
        std::string entry;                                    ///< stream entry id
        Reply source;                                         ///< the read it came in, kept for `fields`
        Reply::View fields{nullptr};                          ///< the entry's field/value pairs, for hand-back
        EnvelopeView envelope;                                ///< views of `fields`
        std::optional<Task> task;
        std::atomic<int> phase{queued};                       ///< queued -> running -> done, or queued -> handed_back
        std::atomic<std::int64_t> started_ns{0};
        static constexpr int queued = 0, running = 1, done = 2, handed_back = 3;
    };
    using Job = std::shared_ptr<InFlight>;

    struct Completion {
        Job job;
        Status status;
        std::string body;
    };

    static WorkerOptions normalize(WorkerOptions o) {
        if (o.priorities < 1) throw std::invalid_argument("taskdist::redis::Worker: priorities must be >= 1");
        if (o.lease.count() <= 0) throw std::invalid_argument("taskdist::redis::Worker: lease must be positive");
        if (o.block.count() <= 0) throw std::invalid_argument("taskdist::redis::Worker: block must be positive");
        if (o.max_deliveries == 0) throw std::invalid_argument("taskdist::redis::Worker: max_deliveries must be >= 1");
        // A blocking read must end well before hiredis' own timeout (see Endpoint::timeout).
        if (o.block > o.redis.timeout / 2) {
            throw std::invalid_argument("taskdist::redis::Worker: block must be at most half the connection timeout");
        }
        if (o.result_ttl.count() <= 0) throw std::invalid_argument("taskdist::redis::Worker: result_ttl must be positive");
        if (o.max_result_bytes == 0) throw std::invalid_argument("taskdist::redis::Worker: max_result_bytes must be positive");
        if (o.heartbeat.count() <= 0) o.heartbeat = std::max(std::chrono::milliseconds(1), o.lease / 3);
        // The loop heartbeats between reads, so a held task can go
        // heartbeat + block without one; past the lease, other workers take
        // over tasks that are running here (and each takeover counts a
        // delivery toward max_deliveries). A third of the lease is left for
        // slow round trips. (Written so that no sum or product can
        // overflow: any of them may be milliseconds::max().)
        const auto most = o.lease - o.lease / 3;
        if (o.heartbeat > most || o.block > most - o.heartbeat) {
            throw std::invalid_argument("taskdist::redis::Worker: heartbeat + block must be at most two thirds of lease (heartbeat " +
                                        std::to_string(o.heartbeat.count()) + " ms, block " + std::to_string(o.block.count()) +
                                        " ms, lease " + std::to_string(o.lease.count()) + " ms)");
        }
        if (o.consumer.empty()) o.consumer = process_name();
        if (o.redis.client_name.empty()) o.redis.client_name = "taskdist-worker:" + o.consumer;
        return o;
    }

    static PoolOptions local_options(const WorkerOptions& o) {
        PoolOptions p = o.pool;
        p.max_attempts = 1;
        p.queue_capacity = 0;  // a held task must reach the handler (drop_oldest would drop it unseen)
        p.on_error = [](std::exception_ptr) {};  // execute() reports every outcome itself
        return p;
    }

    static std::int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    }

    void say(const std::string& line) const noexcept {
        if (!options_.log) return;
        try {
            options_.log(line);
        } catch (...) {
            // A log sink that fails must not stop the worker.
        }
    }

    void counters_add(std::uint64_t WorkerCounters::*field, std::uint64_t n = 1) {
        std::lock_guard lock(counters_mutex_);
        counters_.*field += n;
    }

    // ---- on the local pool's threads ------------------------------------------

    template <class H>
    void execute(H& handler, Job& job, TaskContext& ctx) {
        int expected = InFlight::queued;
        job->started_ns.store(now_ns(), std::memory_order_relaxed);
        if (!job->phase.compare_exchange_strong(expected, InFlight::running)) return;  // handed back meanwhile
        Completion c{job, Status::ok, {}};
        try {
            if constexpr (std::is_void_v<Result>) {
                invoke(handler, std::move(*job->task), ctx);
            } else {
                c.body = Codec<Result>::encode(invoke(handler, std::move(*job->task), ctx));
            }
            if (ctx.stop_requested()) c.status = Status::timeout;
        } catch (const TaskTimeout&) {
            c.status = Status::timeout;
        } catch (const std::exception& e) {
            c.status = ctx.stop_requested() ? Status::timeout : Status::error;
            c.body = std::string(typeid(e).name()) + ": " + e.what();
        } catch (...) {
            c.status = ctx.stop_requested() ? Status::timeout : Status::error;
            c.body = "an exception not derived from std::exception";
        }
        if (c.body.size() > options_.max_result_bytes) {
            c.body = "taskdist::redis::Worker: the result is " + std::to_string(c.body.size()) +
                     " bytes, over WorkerOptions::max_result_bytes (" + std::to_string(options_.max_result_bytes) +
                     "): not sent";
            c.status = Status::error;
        }
        finish(std::move(c));
    }

    template <class H>
    static decltype(auto) invoke(H& handler, Task&& task, TaskContext& ctx) {
        if constexpr (std::is_invocable_v<H&, Task&&, TaskContext&>) {
            return handler(std::move(task), ctx);
        } else {
            return handler(std::move(task));
        }
    }

    /// Hands a result to the completer, unless the task is done already
    /// (the worker gave up on a hung handler).
    void finish(Completion c) {
        int expected = InFlight::running;
        if (!c.job->phase.compare_exchange_strong(expected, InFlight::done)) return;
        {
            std::lock_guard lock(held_mutex_);
            ++finishing_;
        }
        slot_cv_.notify_all();  // the loop may be waiting for a slot
        {
            std::lock_guard lock(done_mutex_);
            done_queue_.push_back(std::move(c));
        }
        done_cv_.notify_one();
    }

    // ---- the completer thread ---------------------------------------------------

    void complete_loop(std::stop_token st) {
        for (;;) {
            std::vector<Completion> batch;
            {
                std::unique_lock lock(done_mutex_);
                done_cv_.wait(lock, st, [&] { return !done_queue_.empty(); });
                if (done_queue_.empty()) {
                    if (st.stop_requested()) return;
                    continue;
                }
                // At most 256 results or 16 MiB of them a script call (one
                // at least): a call's arguments sit whole in the server's
                // query buffer, which it caps (1 GiB by default) by closing
                // the connection, and the batch would be retried as it was.
                std::size_t bytes = 0;
                while (!done_queue_.empty() && batch.size() < 256 &&
                       (batch.empty() || bytes + done_queue_.front().body.size() <= (std::size_t{16} << 20))) {
                    bytes += done_queue_.front().body.size();
                    batch.push_back(std::move(done_queue_.front()));
                    done_queue_.pop_front();
                }
            }
            deliver(batch, st);
        }
    }

    /// An entry id "<ms>-<seq>" as numbers, to find a batch's lowest and highest.
    static std::pair<std::uint64_t, std::uint64_t> entry_order(std::string_view id) {
        std::pair<std::uint64_t, std::uint64_t> v{0, 0};
        const auto dash = id.find('-');
        std::from_chars(id.data(), id.data() + std::min(dash, id.size()), v.first);
        if (dash != std::string_view::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), v.second);
        return v;
    }

    /// Completes a batch with one script call (its arguments as
    /// scripts::complete reads them); on a Redis error, retries until it goes
    /// through (the results are kept) or the worker is stopping.
    void deliver(std::vector<Completion>& batch, std::stop_token st) {
        // In runs sharing kind, stream and reply list (the results come back in this order).
        const auto before = [](const Completion& x, const Completion& y) {
            const InFlight &a = *x.job, &b = *y.job;
            return std::tie(a.envelope.keep, a.priority, a.envelope.reply) < std::tie(b.envelope.keep, b.priority, b.envelope.reply);
        };
        if (!std::is_sorted(batch.begin(), batch.end(), before)) std::stable_sort(batch.begin(), batch.end(), before);
        std::deque<std::string> owned;  // what the arguments point into (a deque does not move its strings)
        const auto number = [&](std::size_t k) -> std::string_view { return owned.emplace_back(std::to_string(k)); };
        std::vector<std::string_view> keys, argv;
        struct Stream {
            int priority;
            std::string_view lo, hi;
            std::pair<std::uint64_t, std::uint64_t> lo_order, hi_order;
        };
        std::vector<Stream> streams;  // KEYS 1..n, in the order of the batch
        for (const Completion& c : batch) {
            const InFlight& j = *c.job;
            const auto order = entry_order(j.entry);
            auto s = std::find_if(streams.begin(), streams.end(), [&](const Stream& x) { return x.priority == j.priority; });
            if (s == streams.end()) {
                keys.push_back(owned.emplace_back(keys_.stream(j.priority)));
                streams.push_back({j.priority, j.entry, j.entry, order, order});
            } else if (order < s->lo_order) {
                s->lo = j.entry, s->lo_order = order;
            } else if (order > s->hi_order) {
                s->hi = j.entry, s->hi_order = order;
            }
        }
        std::vector<std::string_view> lists;  // KEYS n+1.., each reply list once
        for (const Completion& c : batch) {
            if (std::find(lists.begin(), lists.end(), c.job->envelope.reply) == lists.end()) lists.push_back(c.job->envelope.reply);
        }
        keys.insert(keys.end(), lists.begin(), lists.end());
        std::size_t bound = 0;
        {
            std::lock_guard lock(held_mutex_);
            bound = held_.size() + 1;  // more than this consumer can hold in the range, unless stale entries are there too
        }
        argv.insert(argv.end(), {group_name, options_.consumer, number(static_cast<std::size_t>(options_.result_ttl.count())),
                                 number(bound), number(streams.size())});
        for (const Stream& s : streams) argv.insert(argv.end(), {s.lo, s.hi});
        for (std::size_t i = 0; i < batch.size();) {
            const InFlight& first = *batch[i].job;
            std::size_t end = i + 1;
            while (end < batch.size() && batch[end].job->envelope.keep == first.envelope.keep &&
                   batch[end].job->priority == first.priority && batch[end].job->envelope.reply == first.envelope.reply) {
                ++end;
            }
            const auto stream = std::find_if(streams.begin(), streams.end(), [&](const Stream& x) { return x.priority == first.priority; });
            const auto list = std::find(lists.begin(), lists.end(), first.envelope.reply);
            argv.insert(argv.end(), {first.envelope.keep ? "k" : "p", number(static_cast<std::size_t>(stream - streams.begin()) + 1),
                                     number(streams.size() + static_cast<std::size_t>(list - lists.begin()) + 1), number(end - i)});
            for (; i < end; ++i) {
                const Completion& c = batch[i];
                const InFlight& j = *c.job;
                if (!j.envelope.keep) {
                    argv.insert(argv.end(), {j.entry, owned.emplace_back(reply_record(c.status, j.envelope.task_id, c.body))});
                } else {
                    keys.push_back(owned.emplace_back(keys_.done(j.envelope.task_id)));
                    const std::size_t done = keys.size();
                    keys.push_back(owned.emplace_back(keys_.waiters(j.envelope.task_id)));
                    argv.insert(argv.end(), {number(done), j.entry, j.envelope.task_id, status_name(c.status), c.body});
                }
            }
        }
        std::vector<std::string_view> args;
        args.reserve(1 + keys.size() + argv.size());
        args.push_back(number(keys.size()));
        args.insert(args.end(), keys.begin(), keys.end());
        args.insert(args.end(), argv.begin(), argv.end());

        for (int attempt = 0;; ++attempt) {
            try {
                const Reply out = scripts::complete().run(done_conn_, args);
                std::uint64_t completed = 0, superseded = 0;
                for (std::size_t i = 0; i < batch.size(); ++i) {
                    const Completion& c = batch[i];
                    const long long r = i < out.size() ? out[i].integer() : -1;
                    if (r == 1) {
                        ++completed;
                        if (options_.log) say("completed " + std::string(c.job->envelope.task_id) + " (" + std::string(status_name(c.status)) + ")");
                    } else {
                        ++superseded;
                        if (options_.log) {
                            say("dropped the result of " + std::string(c.job->envelope.task_id) +
                                (r == 0 ? ": its lease was taken over" : ": an earlier result of the task was delivered"));
                        }
                    }
                }
                {
                    std::lock_guard lock(counters_mutex_);
                    counters_.completed += completed;
                    counters_.superseded += superseded;
                }
                release(batch);
                return;
            } catch (const RedisError& e) {
                counters_add(&WorkerCounters::redis_errors);
                say(std::string("cannot deliver results yet: ") + e.what());
                if (st.stop_requested() && attempt > 20) {
                    release(batch);
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 4))));
            }
        }
    }

    void stop_completer() {
        if (completer_.joinable()) {
            completer_.request_stop();
            done_cv_.notify_all();
            completer_.join();
        }
    }

    // ---- held tasks -----------------------------------------------------------

    /// A held entry's key: its level and entry id, as numbers (no string
    /// to build per task).
    struct Slot {
        int priority;
        std::pair<std::uint64_t, std::uint64_t> entry;
        bool operator==(const Slot&) const = default;
    };
    struct SlotHash {
        std::size_t operator()(const Slot& s) const noexcept {
            return std::hash<std::uint64_t>{}(s.entry.first * 0x9e3779b97f4a7c15ULL ^ s.entry.second ^
                                              static_cast<std::uint64_t>(s.priority) << 56);
        }
    };
    static Slot slot_key(int priority, std::string_view entry) { return {priority, entry_order(entry)}; }

    bool holds(int priority, std::string_view entry) const {
        std::lock_guard lock(held_mutex_);
        return held_.count(slot_key(priority, entry)) != 0;
    }

    std::size_t free_slots() const {
        std::lock_guard lock(held_mutex_);
        return free_locked();
    }

    /// Under held_mutex_. A finished task's result on its way to Redis takes
    /// no slot (the threads work on during the completer's round trip), but
    /// the worker holds at most twice `slots_` tasks.
    std::size_t free_locked() const {
        const std::size_t here = held_.size() - finishing_;
        const std::size_t cap = 2 * slots_;
        return here >= slots_ || held_.size() >= cap ? 0 : std::min(slots_ - here, cap - held_.size());
    }

    void hold(const Job& job) {
        std::lock_guard lock(held_mutex_);
        const bool added = held_.insert_or_assign(slot_key(job->priority, job->entry), job).second;
        if (added && job->envelope.timeout_ms > 0) ++timed_;
    }

    /// Under held_mutex_; false if it was not held (not this job, at least:
    /// finishing_ counts jobs, and must not lose one to a key reused).
    bool unhold(const Job& job) {
        const auto it = held_.find(slot_key(job->priority, job->entry));
        if (it == held_.end() || it->second != job) return false;
        held_.erase(it);
        if (job->envelope.timeout_ms > 0) --timed_;
        return true;
    }

    void release(const Job& job) {
        {
            std::lock_guard lock(held_mutex_);
            unhold(job);
        }
        slot_cv_.notify_all();
    }

    void release(const std::vector<Completion>& batch) {
        {
            std::lock_guard lock(held_mutex_);
            for (const Completion& c : batch) {
                if (unhold(c.job)) --finishing_;  // each went through finish()
            }
        }
        slot_cv_.notify_all();
    }

    void wait_for_slot(std::chrono::milliseconds most) {
        std::unique_lock lock(held_mutex_);
        slot_cv_.wait_for(lock, most, [&] { return free_locked() > 0; });
    }

    std::vector<Job> held_jobs() const {
        std::lock_guard lock(held_mutex_);
        std::vector<Job> out;
        out.reserve(held_.size());
        for (const auto& [k, j] : held_) out.push_back(j);
        return out;
    }

    // ---- the loop's steps ------------------------------------------------------

    /// Resets the idle time of every held task that is not done.
    void heartbeat() {
        std::vector<std::vector<std::string>> ids(static_cast<std::size_t>(options_.priorities));
        // Done ones too: a result waiting for the completer (Redis slow or
        // away) must not lose its lease meanwhile.
        for (const Job& j : held_jobs()) ids[static_cast<std::size_t>(j->priority)].push_back(j->entry);
        for (int p = 0; p < options_.priorities; ++p) {
            auto& list = ids[static_cast<std::size_t>(p)];
            if (list.empty()) continue;
            const std::string stream = keys_.stream(p);
            std::vector<std::string_view> args{"1", stream, group_name, options_.consumer};
            for (const auto& id : list) args.push_back(id);
            scripts::heartbeat().run(loop_conn_, args);
        }
    }

    /// Tasks whose handler ignored its timeout for longer than hang_grace are
    /// reported timed out (the local pool replaces the hung thread).
    void expire_hung() {
        {
            std::lock_guard lock(held_mutex_);
            if (timed_ == 0) return;  // the common case: no held task has a timeout, nothing to look at
        }
        const std::int64_t now = now_ns();
        for (const Job& j : held_jobs()) {
            if (j->envelope.timeout_ms <= 0 || j->phase.load(std::memory_order_acquire) != InFlight::running) continue;
            const std::int64_t limit = j->started_ns.load(std::memory_order_relaxed) +
                                       (j->envelope.timeout_ms + options_.hang_grace.count()) * 1'000'000;
            if (now >= limit) finish(Completion{j, Status::timeout, {}});
        }
    }

    /// Takes over tasks idle longer than the lease; returns how many it started.
    std::size_t reclaim(std::size_t free) {
        std::size_t started = 0;
        const std::string idle = std::to_string(options_.lease.count());
        for (int p = options_.priorities - 1; p >= 0 && started < free; --p) {
            const std::string stream = keys_.stream(p);
            const std::string count = std::to_string(free - started);
            // From where the last call left off: Redis looks at no more than
            // ten times COUNT pending entries a call, so from 0-0 each time a
            // dead worker's entry behind that many of a live worker's (all
            // heartbeated, none claimable) would wait until they finished.
            std::string& cursor = claim_cursor_[static_cast<std::size_t>(p)];
            Reply r = loop_conn_.command({"XAUTOCLAIM", stream, group_name, options_.consumer, idle, cursor, "COUNT", count});
            if (r.size() < 2) continue;
            cursor = r[0].is_nil() ? "0-0" : std::string(r[0].str());
            const Reply::View entries = r[1];
            for (std::size_t i = 0; i < entries.size(); ++i) {
                try {
                    const Reply::View e = entries[i];
                    if (e.is_nil() || e.size() < 2 || e[1].is_nil()) continue;  // deleted meanwhile
                    const std::string entry(e[0].str());
                    if (holds(p, entry)) continue;  // ours, heartbeat late: it is running here already
                    Reply pending = loop_conn_.command({"XPENDING", stream, group_name, entry, entry, "1", options_.consumer});
                    const long long deliveries = pending.size() ? pending[0][3].integer() : 1;
                    if (deliveries > static_cast<long long>(options_.max_deliveries)) {
                        dead_letter(p, entry, e[1],
                                    "delivered " + std::to_string(deliveries) + " times (max_deliveries " +
                                        std::to_string(options_.max_deliveries) + "): its workers kept dying");
                        continue;
                    }
                    counters_add(&WorkerCounters::reclaimed);
                    if (dispatch(p, entry, r, e[1], deliveries)) ++started;
                } catch (const RedisError& err) {
                    // As in take(): the other claimed entries still get dispatched.
                    counters_add(&WorkerCounters::redis_errors);
                    say(std::string("redis error on one reclaimed entry: ") + err.what());
                }
            }
        }
        return started;
    }

    /// Reads new tasks: each level without blocking, highest first; if all
    /// are empty, blocks on all of them for at most `block`. The levels above
    /// the one the last read took tasks from were empty then, and are most
    /// likely empty still: they and that level are read in one round trip,
    /// not one each (under load a round trip costs the loop more than the
    /// read). If a level above has filled meanwhile, that read takes tasks
    /// from it and from the level below (see WorkerOptions::slots).
    void read_new(std::size_t free) {
        const std::string count = std::to_string(free);
        const auto read = [&](const std::string& stream) -> std::vector<std::string_view> {
            return {"XREADGROUP", "GROUP", group_name, options_.consumer, "COUNT", count, "STREAMS", stream, ">"};
        };
        int p = options_.priorities - 1;
        if (last_level_ >= 0 && last_level_ < p) {
            std::vector<std::string> streams;
            std::vector<std::vector<std::string_view>> reads;
            for (int q = p; q >= last_level_; --q) streams.push_back(keys_.stream(q));
            for (const auto& stream : streams) reads.push_back(read(stream));
            const std::vector<Reply> replies = loop_conn_.pipeline(reads);
            std::size_t n = 0;
            int highest = -1;
            std::optional<std::string> failed;
            for (std::size_t i = 0; i < replies.size(); ++i) {
                // Taken first, thrown after: the other levels' entries are ours now.
                if (replies[i].is_error()) {
                    if (!failed) failed.emplace("taskdist::redis: " + std::string(replies[i].str()));
                } else if (!replies[i].is_nil() && replies[i].size() > 0) {
                    const std::size_t k = take(replies[i]);
                    if (k > 0 && highest < 0) highest = p - static_cast<int>(i);
                    n += k;
                }
            }
            if (failed) throw RedisError(*failed);
            if (n > 0) {
                last_level_ = highest;
                return;
            }
            p = last_level_ - 1;
        }
        for (; p >= 0; --p) {
            const std::string stream = keys_.stream(p);
            Reply r = loop_conn_.command(read(stream));
            if (!r.is_nil() && r.size() > 0 && take(r) > 0) {
                last_level_ = p;
                return;
            }
        }
        std::vector<std::string> streams;
        for (int q = options_.priorities - 1; q >= 0; --q) streams.push_back(keys_.stream(q));
        const std::string block = std::to_string(options_.block.count());
        std::vector<std::string_view> args{"XREADGROUP", "GROUP", group_name, options_.consumer, "COUNT", count, "BLOCK", block, "STREAMS"};
        for (const auto& stream : streams) args.push_back(stream);
        for (std::size_t i = 0; i < streams.size(); ++i) args.emplace_back(">");
        Reply r = loop_conn_.command(args);
        last_level_ = -1;
        if (r.is_nil()) return;
        take(r);
        for (std::size_t i = 0; i < r.size(); ++i) last_level_ = std::max(last_level_, priority_of(r[i][0].str()));
    }

    /// Dispatches every entry of an XREADGROUP reply; returns how many.
    std::size_t take(const Reply& r) {
        std::size_t n = 0;
        for (std::size_t s = 0; s < r.size(); ++s) {
            const Reply::View stream = r[s];
            const int priority = priority_of(stream[0].str());
            const Reply::View entries = stream[1];
            for (std::size_t i = 0; i < entries.size(); ++i) {
                const Reply::View e = entries[i];
                if (e.size() < 2 || e[1].is_nil()) continue;
                // One entry's failure (dead-lettering it hit a Redis error)
                // must not strand the others this read already claimed.
                try {
                    if (dispatch(priority, std::string(e[0].str()), r, e[1], 1)) ++n;
                } catch (const RedisError& err) {
                    counters_add(&WorkerCounters::redis_errors);
                    say(std::string("redis error on one entry (it will be reclaimed): ") + err.what());
                }
            }
        }
        return n;
    }

    int priority_of(std::string_view stream) const {
        const std::size_t colon = stream.rfind(':');
        int p = 0;
        std::from_chars(stream.data() + colon + 1, stream.data() + stream.size(), p);
        return p;
    }

    /// Decodes an entry and queues it on the local pool, or dead-letters it.
    /// `fields` lies in `source`, which the job keeps (cheaper than copying
    /// every field of every entry for the rare hand-back).
    bool dispatch(int priority, const std::string& entry, const Reply& source, const Reply::View& fields, long long deliveries) {
        auto job = std::make_shared<InFlight>();
        job->priority = priority;
        job->entry = entry;
        job->source = source;
        job->fields = fields;
        std::string bad;
        try {
            job->envelope = view_envelope(fields, keys_);
            job->task.emplace(Codec<Task>::decode(job->envelope.body));
        } catch (const std::exception& e) {
            // DecodeError, or whatever a user's codec throws: the message is
            // bad, not the worker.
            bad = e.what();
        }
        if (!bad.empty()) {
            dead_letter(priority, entry, fields, "cannot decode: " + bad);
            return false;
        }
        hold(job);
        counters_add(&WorkerCounters::taken);
        if (options_.log) {
            say("took " + std::string(job->envelope.task_id) + " (priority " + std::to_string(priority) + ", delivery " +
                std::to_string(deliveries) + ")");
        }
        try {
            SubmitOptions so;
            so.timeout = std::chrono::milliseconds(job->envelope.timeout_ms);
            pool_.post(job, so);
        } catch (...) {
            // The local pool refused it (closing): leave it pending for others.
            release(job);
            return false;
        }
        return true;
    }

    void dead_letter(int priority, const std::string& entry, const Reply::View& fields, const std::string& reason) {
        // The script passes the fields on through Lua's unpack(), which
        // takes about 8,000 values at most: an entry with more (any client
        // may write one; a taskdist envelope is one field) would fail to be
        // dead-lettered forever, in front of every reclaim. It keeps its
        // first fields and a note of how many it had.
        constexpr std::size_t max_values = 2000;
        const std::size_t kept = std::min(fields.size(), max_values) & ~std::size_t{1};
        std::vector<std::string> flat;
        for (std::size_t i = 0; i < kept; ++i) {
            flat.emplace_back(fields[i].type() == REDIS_REPLY_STRING ? fields[i].str() : std::string_view());
        }
        if (kept < fields.size()) {
            flat.emplace_back("taskdist-truncated");
            flat.emplace_back("the first " + std::to_string(kept / 2) + " of " + std::to_string(fields.size() / 2) +
                              " field/value pairs");
        }
        EnvelopeAddress to = envelope_address(fields);
        const std::string& task_id = to.task_id;
        std::string& reply = to.reply;
        if (!keys_.is_reply_list(reply) || task_id.empty()) reply.clear();  // tell a client only there
        const std::string stream = keys_.stream(priority);
        const std::string dead = keys_.dead();
        const std::string done = task_id.empty() ? std::string() : keys_.done(task_id);
        const std::string waiters = task_id.empty() ? std::string() : keys_.waiters(task_id);
        const std::string ttl = std::to_string(options_.result_ttl.count());
        std::vector<std::string_view> args{"5",    stream, dead, reply, done, waiters, group_name, options_.consumer, entry,
                                           reason, ttl,    task_id, to.keep ? "1" : "0"};
        for (const auto& f : flat) args.push_back(f);
        if (scripts::dead_letter().run(loop_conn_, args).integer() == 1) {
            counters_add(&WorkerCounters::dead_lettered);
            say("dead-lettered entry " + entry + (task_id.empty() ? "" : " (task " + task_id + ")") + ": " + reason);
        }
    }

    /// At stop: hand back what never started, let the rest finish.
    void shut_down() {
        pool_.pause();
        std::vector<Job> back;
        for (const Job& j : held_jobs()) {
            int expected = InFlight::queued;
            if (j->phase.compare_exchange_strong(expected, InFlight::handed_back)) back.push_back(j);
        }
        pool_.resume();  // running ones finish; the handed-back ones are skipped when popped
        for (const Job& j : back) {
            try {
                const std::string stream = keys_.stream(j->priority);
                std::vector<std::string_view> args{"1", stream, group_name, options_.consumer, j->entry};
                for (std::size_t i = 0; i < j->fields.size(); ++i) {
                    args.push_back(j->fields[i].type() == REDIS_REPLY_STRING ? j->fields[i].str() : std::string_view());
                }
                if (scripts::hand_back().run(loop_conn_, args).integer() == 1) {
                    counters_add(&WorkerCounters::handed_back);
                    say("handed back " + std::string(j->envelope.task_id));
                }
            } catch (const RedisError& e) {
                say(std::string("could not hand back (its lease will expire): ") + e.what());
            }
            release(j);
        }
        // Running tasks: heartbeat them until they complete, or until drain_timeout.
        const auto until = Clock::now() + options_.drain_timeout;
        auto last_heartbeat = Clock::now();
        for (;;) {
            {
                std::unique_lock lock(held_mutex_);
                if (held_.empty() || Clock::now() >= until) break;
                slot_cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return held_.empty(); });
            }
            expire_hung();
            if (Clock::now() - last_heartbeat >= options_.heartbeat) {
                try {
                    heartbeat();
                } catch (const RedisError&) {
                }
                last_heartbeat = Clock::now();
            }
        }
        // Past drain_timeout: a handler still running must not report into
        // this object once run() has returned (it may be gone); its lease
        // will expire and another worker will run the task again.
        for (const Job& j : held_jobs()) {
            if (j->phase.exchange(InFlight::done) != InFlight::done) say("gave up waiting for " + std::string(j->envelope.task_id));
        }
        // Wait for the completer to have sent what finished.
        for (auto t = Clock::now() + std::chrono::seconds(5); Clock::now() < t;) {
            {
                std::lock_guard lock(done_mutex_);
                if (done_queue_.empty()) break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        stop_completer();
    }

    WorkerOptions options_;
    Keys keys_;
    Connection loop_conn_;
    Connection done_conn_;
    std::size_t slots_ = 1;
    int last_level_ = -1;  ///< the highest level the last read took tasks from; -1: none (the loop's own)
    /// Per level, where the next XAUTOCLAIM scan starts ("0-0" once it has wrapped). The loop's own.
    std::vector<std::string> claim_cursor_ = std::vector<std::string>(static_cast<std::size_t>(options_.priorities), "0-0");

    mutable std::mutex held_mutex_;
    std::condition_variable slot_cv_;
    std::unordered_map<Slot, Job, SlotHash> held_;
    std::size_t timed_ = 0;  ///< held tasks with a timeout (expire_hung looks only when there are some)
    std::size_t finishing_ = 0;  ///< held tasks finished here whose results the completer has not yet delivered

    std::mutex done_mutex_;
    std::condition_variable_any done_cv_;
    std::deque<Completion> done_queue_;
    std::jthread completer_;

    mutable std::mutex counters_mutex_;
    WorkerCounters counters_;

    // Last: its threads call into the members above, so it is destroyed (and
    // joined) first.
    WorkerPool<Job, void, Dist> pool_;
};

} // namespace taskdist::redis
