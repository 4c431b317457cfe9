// taskdist: PoolObserver, hooks into a pool's life for tracing, metrics and
// tests.
#pragma once

#include "distributor.hpp"
#include "options.hpp"

namespace taskdist {

/// How one attempt that a worker started ended, as PoolObserver::on_finish
/// is told.
enum class AttemptOutcome {
    completed,   ///< the handler returned and its value is the task's outcome
    failed,      ///< the handler threw and that is the task's outcome
    timed_out,   ///< the attempt ran past its time; the task resolved TaskTimeout
    retrying,    ///< the attempt failed and the task was queued again
    superseded,  ///< the task was resolved while it ran (cancelled, or timed out)
};

/// Hooks into a pool, installed with PoolOptions::observer. Every hook has an
/// empty default; override the ones you need.
///
/// Each hook runs on the thread where the event happens: on_submit on the
/// submitting thread, on_start/on_finish/on_worker_start/on_worker_stop on
/// the worker, on_worker_replace on the worker or the pool's supervisor. So
/// an observer must be thread-safe, and fast: a hook delays the task (and,
/// for on_finish, the publication of its outcome: whoever sees a handle
/// ready sees its on_finish done). An exception a hook throws is printed and
/// dropped. The views are valid only during the call. on_submit runs before
/// its task is queued: shutdown(), shutdown_until(), shutdown_now() or
/// wait_idle() on the same pool from it would wait for that task, and throw
/// WouldDeadlock instead.
///
/// Order: for one task, on_submit, then per attempt on_start and on_finish
/// (on the same worker); for one worker thread, on_worker_start before its
/// first on_start and on_worker_stop after its last on_finish. An attempt
/// whose thread is declared hung gets no on_finish (its thread is given up;
/// on_worker_replace says so), and a task run on the submitting thread
/// (Overflow::caller_runs) gets only on_submit. With no observer installed
/// the pool pays one predictable branch per event.
class PoolObserver {
public:
    virtual ~PoolObserver() = default;

    /// A task is about to be queued (accepted: it will resolve exactly once).
    virtual void on_submit(const TaskInfo& /*task*/) {}
    /// A worker is starting an attempt of a task.
    virtual void on_start(const WorkerView& /*worker*/, const TaskInfo& /*task*/) {}
    /// The attempt's handler returned (or threw) on that worker.
    virtual void on_finish(const WorkerView& /*worker*/, const TaskInfo& /*task*/, AttemptOutcome /*outcome*/) {}
    /// A worker thread started serving its slot (also a replacement thread).
    virtual void on_worker_start(const WorkerView& /*worker*/) {}
    /// A worker thread is leaving: the pool is shutting down.
    virtual void on_worker_stop(const WorkerView& /*worker*/) {}
    /// A worker slot was rebuilt or found broken (as PoolOptions::on_replace).
    virtual void on_worker_replace(const ReplaceEvent& /*event*/) {}

protected:
    PoolObserver() = default;
    PoolObserver(const PoolObserver&) = default;
    PoolObserver& operator=(const PoolObserver&) = default;
};

} // namespace taskdist
