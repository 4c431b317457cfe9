// taskdist: what a running task may ask about itself.
#pragma once

#include <cstddef>
#include <stop_token>

namespace taskdist {

/// Handed by reference to handlers that take a second parameter. Valid only
/// during that call, and only on the worker thread that made it.
class TaskContext {
public:
    TaskContext(std::size_t worker_index, unsigned attempt, const std::stop_source* stop) noexcept
        : worker_(worker_index), attempt_(attempt), stop_(stop) {}

    /// 0-based slot of the worker running the task.
    std::size_t worker_index() const noexcept { return worker_; }
    /// Which attempt this is, counting from 1.
    unsigned attempt() const noexcept { return attempt_; }
    /// Requested when the pool wants this task to stop early; cooperative.
    std::stop_token stop_token() const noexcept { return stop_->get_token(); }
    bool stop_requested() const noexcept { return stop_->stop_requested(); }

private:
    std::size_t worker_;
    unsigned attempt_;
    // A pointer, not a std::stop_token: copying a token is an atomic
    // reference-count round trip that most tasks would pay for nothing.
    const std::stop_source* stop_;
};

} // namespace taskdist
