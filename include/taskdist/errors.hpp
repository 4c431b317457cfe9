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

} // namespace taskdist
