// taskdist: TaskGroup<R>, one handle over a batch of tasks.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>
#include <vector>

#include "task_handle.hpp"

namespace taskdist {

/// The handles of a batch of tasks, waited for and collected together:
/// exactly those tasks, not the whole pool. Made by WorkerPool::submit_batch,
/// or filled by hand with add() (from any pool, e.g. a ThreadPool).
///
/// Move-only, and used by one thread at a time, like the handles it holds.
/// Destroying a group neither waits for nor cancels its tasks.
///
/// First-error semantics: results() always waits for every task of the
/// group first (so none is left running behind the caller's back), then
/// rethrows the exception of the first failed task in submission order, or
/// returns every value in submission order. Either way the group is empty
/// afterwards.
template <class R>
class TaskGroup {
public:
    using result_type = R;

    TaskGroup() = default;
    explicit TaskGroup(std::vector<TaskHandle<R>> handles) : handles_(std::move(handles)) {}
    TaskGroup(TaskGroup&&) noexcept = default;
    TaskGroup& operator=(TaskGroup&&) noexcept = default;

    /// Appends a task's handle; throws InvalidHandle for an empty one.
    void add(TaskHandle<R>&& handle) {
        if (!handle.valid()) throw InvalidHandle("taskdist: TaskGroup::add() of an empty handle");
        handles_.push_back(std::move(handle));
    }

    std::size_t size() const noexcept { return handles_.size(); }
    bool empty() const noexcept { return handles_.empty(); }

    /// True once every task of the group has resolved. Never blocks.
    bool ready() const {
        for (const auto& h : handles_) {
            if (!h.ready()) return false;
        }
        return true;
    }

    /// Blocks until every task of the group has resolved.
    void wait() const {
        for (const auto& h : handles_) h.wait();
    }

    /// As wait(), giving up after `timeout`; true if all resolved in time.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        return wait_until(detail::deadline_after(timeout));
    }

    /// As wait(), giving up at `deadline`; true if all resolved in time.
    template <class Clock, class Duration>
    bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
        for (const auto& h : handles_) {
            if (!h.wait_until(deadline)) return false;
        }
        return true;
    }

    /// Cancels every task of the group that has not resolved; returns how
    /// many this call cancelled.
    std::size_t cancel() {
        std::size_t n = 0;
        for (auto& h : handles_) n += h.cancel() ? 1 : 0;
        return n;
    }

    /// Waits for all, then returns the values in submission order, or
    /// rethrows the first failure in submission order (see the class comment).
    auto results() {
        wait();
        std::vector<TaskHandle<R>> taken = std::move(handles_);
        handles_.clear();
        std::exception_ptr first;
        if constexpr (std::is_void_v<R>) {
            for (auto& h : taken) {
                try {
                    h.get();
                } catch (...) {
                    if (!first) first = std::current_exception();
                }
            }
            if (first) std::rethrow_exception(first);
        } else {
            std::vector<R> values;
            values.reserve(taken.size());
            for (auto& h : taken) {
                try {
                    values.push_back(h.get());
                } catch (...) {
                    if (!first) first = std::current_exception();
                }
            }
            if (first) std::rethrow_exception(first);
            return values;
        }
    }

    /// The individual handles, in submission order, e.g. to take results one
    /// by one or to tell which task failed.
    std::vector<TaskHandle<R>>& handles() noexcept { return handles_; }

private:
    std::vector<TaskHandle<R>> handles_;
};

} // namespace taskdist
