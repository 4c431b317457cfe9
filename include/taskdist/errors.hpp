// taskdist: the exception types the library throws or stores in a handle.
//
// Every library exception derives from taskdist::Error (a std::runtime_error)
// so callers can catch the whole family at once; each message says what was
// wrong. Argument errors in constructors use std::invalid_argument instead,
// as the standard library does.
#pragma once

#include <stdexcept>
#include <string>

namespace taskdist {

/// Base of every exception taskdist raises. Thread-safe to copy.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// submit()/post() after shutdown() began.
class PoolClosed : public Error {
public:
    PoolClosed() : Error("taskdist: the pool is shut down and accepts no new tasks") {}
    using Error::Error;
};

/// An operation on an empty TaskHandle: default-constructed, moved from, or
/// whose result get() already took.
class InvalidHandle : public Error {
public:
    using Error::Error;
};

/// A call that would wait for itself: e.g. wait_idle() or shutdown() from
/// inside a task of the same pool.
class WouldDeadlock : public Error {
public:
    using Error::Error;
};

/// Stored in a handle whose task was destroyed before it could run, e.g.
/// because a distributor threw while taking it. Never seen in normal use; it
/// exists so that no handle is ever left waiting forever.
class TaskAbandoned : public Error {
public:
    TaskAbandoned() : Error("taskdist: the task was destroyed before it ran") {}
    using Error::Error;
};

/// The outcome of a task whose run time (SubmitOptions::timeout, or the
/// pool's default) or absolute deadline passed before it finished. The task's
/// stop token is requested at the same moment.
class TaskTimeout : public Error {
public:
    TaskTimeout() : Error("taskdist: the task did not finish before its timeout or deadline") {}
    using Error::Error;
};

/// The outcome of a task cancelled by TaskHandle::cancel() or by the caller's
/// stop token (SubmitOptions::stop_token) before it resolved.
class TaskCancelled : public Error {
public:
    TaskCancelled() : Error("taskdist: the task was cancelled") {}
    using Error::Error;
};

/// Thrown by a handler to say "this worker's state is unusable" (a lost
/// connection, a poisoned cache). The worker's state is rebuilt, with
/// back-off, by calling the pool's factory again; the task is retried on
/// another worker if it has attempts left (PoolOptions::max_attempts).
class WorkerFault : public Error {
public:
    WorkerFault() : Error("taskdist: the worker's state is unusable") {}
    using Error::Error;
};

/// The outcome of tasks that were queued while every worker kept failing to
/// start (PoolOptions::broken_after consecutive failures each): rather than
/// wait for a worker that may never come, they resolve with this error.
class PoolBroken : public Error {
public:
    PoolBroken() : Error("taskdist: every worker of the pool keeps failing; the task was not run") {}
    using Error::Error;
};

/// Thrown by submit()/post() when a bounded pool's queue is full and the
/// overflow policy is Overflow::reject (or Overflow::block and its
/// block_timeout passed). The task was not accepted: nothing of it is kept.
class QueueFull : public Error {
public:
    QueueFull() : Error("taskdist: the pool's queue is full (PoolOptions::queue_capacity); the task was not accepted") {}
    using Error::Error;
};

/// The outcome of an accepted task that a bounded pool dropped, still
/// queued, to make room for a newer one (Overflow::drop_oldest).
class TaskRejected : public Error {
public:
    TaskRejected() : Error("taskdist: the task was dropped from a full queue to make room for a newer one") {}
    using Error::Error;
};

} // namespace taskdist
