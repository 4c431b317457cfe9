// taskdist: the settings of a pool and of one submission.
//
// Plain aggregates with a default for every field, so designated
// initializers that name a subset ({.workers = 4}) compile cleanly under
// -Wextra. New fields are only ever appended.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "errors.hpp"

namespace taskdist {

class PoolObserver;  // observer.hpp

/// The default hardware concurrency, at least 1.
inline unsigned default_worker_count() noexcept { return std::max(1u, std::thread::hardware_concurrency()); }

/// Why a worker slot was rebuilt; see PoolOptions::on_replace.
enum class ReplaceReason {
    hung,            ///< the handler ignored a stop request for longer than hang_grace: a fresh thread took the slot
    worker_fault,    ///< the handler threw taskdist::WorkerFault: the worker's state was rebuilt
    factory_failed,  ///< the per-worker factory threw: the slot stays down until a retry of the factory succeeds
};

/// What on_replace is told. `count` is how many times this slot was replaced
/// so far, this time included.
struct ReplaceEvent {
    std::size_t worker = 0;
    ReplaceReason reason = ReplaceReason::hung;
    std::uint64_t count = 0;
};

/// The default retry predicate: a broken worker (WorkerFault) and a timeout
/// (including a hung worker, which only happens after one) are worth another
/// attempt; an exception of the task's own is not.
inline bool default_retryable(const std::exception_ptr& error) noexcept {
    if (!error) return false;
    try {
        std::rethrow_exception(error);
    } catch (const WorkerFault&) {
        return true;
    } catch (const TaskTimeout&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// What submit()/post() do when a bounded pool's queue is full
/// (PoolOptions::queue_capacity tasks accepted and not yet started).
enum class Overflow {
    block,        ///< wait for a free place (at most PoolOptions::block_timeout, then QueueFull)
    reject,       ///< throw taskdist::QueueFull at once (try_submit()/try_post() return empty instead)
    caller_runs,  ///< run the task on the submitting thread before submit() returns
    drop_oldest,  ///< the longest-queued task resolves TaskRejected and the new one takes its place
};

/// Settings of one pool; read once, by the pool's constructor, which throws
/// std::invalid_argument for a value out of range.
struct PoolOptions {
    /// Number of worker threads. 0 is rejected with std::invalid_argument.
    std::size_t workers = default_worker_count();
    /// Thread-name prefix; workers are named "<name>-<index>" (cut to 15 bytes on Linux).
    std::string name = "taskdist";
    /// Receives the exception of a post()ed task that failed (threw, or timed
    /// out), on the thread that resolved it. Empty means: print one line to
    /// stderr. Exceptions thrown by on_error itself are caught and printed.
    std::function<void(std::exception_ptr)> on_error = {};

    // ---- fault tolerance ----------------------------------------------

    /// Run-time limit of every task that does not set its own (0: none).
    std::chrono::nanoseconds default_timeout{0};
    /// How long a handler may ignore a stop request (after a timeout or a
    /// cancel) before its worker is declared hung and a fresh thread takes
    /// the slot.
    std::chrono::nanoseconds hang_grace = std::chrono::seconds(1);
    /// How long shutdown() and the destructor wait, in all, for hung
    /// (quarantined) threads to return before leaving them behind, detached.
    std::chrono::nanoseconds quarantine_wait = std::chrono::seconds(1);
    /// Attempts per task, the first included, unless the task sets its own.
    std::uint32_t max_attempts = 1;
    /// Which failures are retried; empty means default_retryable.
    std::function<bool(const std::exception_ptr&)> retry_if = {};
    /// Delay before attempt k+1 is queued: retry_backoff * 2^(k-1).
    std::chrono::nanoseconds retry_backoff = std::chrono::milliseconds(1);
    /// Delay before a broken worker is rebuilt: restart_backoff * 2^(f-1)
    /// after f failures in a row, at most restart_backoff_max.
    std::chrono::nanoseconds restart_backoff = std::chrono::milliseconds(10);
    std::chrono::nanoseconds restart_backoff_max = std::chrono::seconds(1);
    /// Once every worker is down and has failed this many times in a row, the
    /// queued tasks (and new ones, until a worker recovers) resolve with
    /// taskdist::PoolBroken instead of waiting.
    std::uint32_t broken_after = 3;
    /// Called after a worker slot is rebuilt or found broken, on the thread
    /// that did it (a worker or the pool's supervisor). Must not block long;
    /// exceptions it throws are printed and dropped.
    std::function<void(const ReplaceEvent&)> on_replace = {};

    // ---- capacity --------------------------------------------------------

    /// Most tasks accepted and not yet started, over all workers' queues
    /// together; 0 means unbounded. Retries re-enter the queue without
    /// waiting, so they may exceed it for a moment.
    std::size_t queue_capacity = 0;
    /// What a submit does when the queue is full.
    Overflow overflow = Overflow::block;
    /// Under Overflow::block: how long a submit waits for room before it
    /// throws QueueFull; 0 waits as long as it takes.
    std::chrono::nanoseconds block_timeout{0};

    // ---- lifecycle -------------------------------------------------------

    /// Hooks called at submit, start and finish of each task and at each
    /// worker's start, stop and replacement (see taskdist::PoolObserver);
    /// null means none, at the cost of one branch per event.
    std::shared_ptr<PoolObserver> observer = nullptr;

    // ---- scaling ---------------------------------------------------------

    /// The fewest workers an idle pool shrinks to; 0 means `workers`.
    std::size_t min_workers = 0;
    /// The most workers a loaded pool grows to, and the most resize()
    /// accepts; 0 means `workers`. The pool scales by itself only when
    /// min_workers < max_workers.
    std::size_t max_workers = 0;
    /// A worker is added when a task has waited in the queue about this
    /// long; also the period of the pool's scaling check.
    std::chrono::nanoseconds scale_up_after = std::chrono::milliseconds(10);
    /// A worker is retired after one has been idle this long (never below
    /// min_workers).
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(10);

    // ---- statistics ------------------------------------------------------

    /// Measure queue wait, run time, busy time and throughput (sampled, see
    /// wait_sampling). Run time is read from the TSC where Linux keeps time
    /// with it (a few ns), else steady_clock; back to back, the end of one
    /// attempt is the start of the next. Off: those figures stay zero and the
    /// counts are still exact.
    bool measure_timing = true;
    /// Sampling, so that timing stays a small part of a tiny task's cost
    /// (1: measure every task exactly; 0, the default: 8 where run time is
    /// read from the TSC, 32 where it is read from steady_clock, which costs
    /// 2-3 times as much; the pool's options() say which it took):
    ///  - queue wait: one task in this many per submitting thread (reading
    ///    a clock at submit is most of what timing costs a producer: the TSC
    ///    where run time is read from it, steady_clock where
    ///    TaskInfo::submitted_at must be a time point); where
    ///    every task is stamped anyway (the distributor reads
    ///    TaskInfo::submitted_at, or an observer is set),
    ///    one in this many per worker.
    ///  - run time: every attempt of a microsecond or more, and the first
    ///    after an idle spell, is timed; of shorter ones, one in this many
    ///    per worker is, and counts for this many (count, sum, busy time and
    ///    percentiles are then unbiased estimates, the count within this
    ///    many per worker of the attempts made).
    std::uint32_t wait_sampling = 0;
};

/// Settings of one submit()/post(). Distributors read what they need.
struct SubmitOptions {
    /// Higher runs first under taskdist::Priority; ignored by other distributors.
    int priority = 0;
    /// Affinity key: under taskdist::Sticky, equal keys run on the same worker.
    std::optional<std::uint64_t> key = std::nullopt;
    /// Run-time limit, counted from the moment a worker starts the task;
    /// 0 means PoolOptions::default_timeout.
    std::chrono::nanoseconds timeout{0};
    /// Absolute limit on queue time + run time. A task still queued at its
    /// deadline is never started.
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt;
    /// The caller's own cancellation: a stop request cancels the task.
    std::stop_token stop_token = {};
    /// Attempts for this task, the first included; 0 means PoolOptions::max_attempts.
    std::uint32_t max_attempts = 0;
};

} // namespace taskdist
