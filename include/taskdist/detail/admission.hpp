// taskdist: admission control of a bounded pool: how many accepted tasks
// wait to start, the producers blocked for room, and the queue-order record
// that Overflow::drop_oldest takes its victim from.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>

#include "park.hpp"
#include "task_state.hpp"

namespace taskdist::detail {

/// Counts the places a bounded queue has in use. A place is taken when a
/// task is accepted (or re-queued by a retry) and given back when the task
/// leaves the queue: popped by a worker, or resolved while still queued
/// (cancelled, expired, dropped). A resolved task still sitting in a
/// distributor's queue is a tombstone: the place was given back when it was
/// resolved, so the worker that pops it gives nothing back.
///
/// Thread-safe. Unused (and untouched on the hot path) when capacity is 0.
class Admission {
public:
    // Clamped: SIZE_MAX ("no real limit") cast as it is reads -1, and every
    // task would find the queue full.
    explicit Admission(std::size_t capacity) noexcept
        : cap_(static_cast<std::int64_t>(std::min<std::size_t>(capacity, std::numeric_limits<std::int64_t>::max()))) {}

    bool bounded() const noexcept { return cap_ != 0; }
    std::int64_t in_use() const noexcept { return used_.load(std::memory_order_acquire); }
    /// Producers waiting in take_waiting() now.
    std::uint32_t waiting() const noexcept { return waiters_.load(std::memory_order_acquire); }

    /// Takes a place if one is free.
    bool try_take() noexcept {
        std::int64_t n = used_.load(std::memory_order_relaxed);
        while (n < cap_) {
            if (used_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst)) return true;
        }
        return false;
    }

    /// Takes a place whether or not one is free: a retry re-entering the
    /// queue was accepted long ago and must not wait.
    void force_take() noexcept { used_.fetch_add(1, std::memory_order_seq_cst); }

    /// Gives a place back and wakes producers waiting for one.
    void give_back() noexcept {
        used_.fetch_sub(1, std::memory_order_seq_cst);
        // Pairs with take_waiting(): either it sees the place free, or we
        // see it waiting (both sides are seq_cst).
        if (waiters_.load(std::memory_order_seq_cst) != 0) wake_waiters();
    }

    /// Blocks until a place is taken (true), `deadline` passes or give_up()
    /// returns true (false). give_up is checked after every wake.
    template <class GiveUp>
    bool take_waiting(std::chrono::steady_clock::time_point deadline, GiveUp give_up) {
        waiters_.fetch_add(1, std::memory_order_seq_cst);
        bool taken = false;
        for (;;) {
            const std::uint32_t epoch = epoch_.load(std::memory_order_acquire);
            if (try_take()) {
                taken = true;
                break;
            }
            if (give_up()) break;
            if (deadline == std::chrono::steady_clock::time_point::max()) {
                park(epoch_, epoch);
            } else if (!park_until(epoch_, epoch, deadline)) {
                taken = try_take();
                break;
            }
        }
        waiters_.fetch_sub(1, std::memory_order_seq_cst);
        return taken;
    }

    /// Wakes every blocked producer (e.g. the pool closed: they give up).
    void wake_waiters() noexcept {
        epoch_.fetch_add(1, std::memory_order_release);
        unpark_all(epoch_);
    }

    // ---- queue order, for drop_oldest ------------------------------------

    /// Records an accepted task at the back of the queue order. Out of
    /// memory, the task goes unrecorded: it cannot be dropped for a newer
    /// one, and still runs.
    void track(TaskStateBase* st) noexcept {
        std::lock_guard lock(order_mutex_);
        // Entries of tasks that started or resolved are dropped lazily;
        // compact once they could outnumber the live ones.
        if (order_.size() >= 2 * static_cast<std::size_t>(cap_) + 64) {
            std::erase_if(order_, [](const StateHold& h) {
                return (h->load_word() & (TaskStateBase::claimed | TaskStateBase::started)) != 0;
            });
        }
        try {
            order_.emplace_back(st);
        } catch (...) {
        }
    }

    /// Claims the longest-queued task that has neither started nor
    /// resolved, and returns it claimed (lock released) for the caller to
    /// resolve; empty if there is none.
    StateHold claim_oldest() noexcept {
        std::lock_guard lock(order_mutex_);
        while (!order_.empty()) {
            StateHold h = std::move(order_.front());
            order_.pop_front();
            const std::uint32_t old = h->lock_unless_claimed();
            if (old & TaskStateBase::claimed) continue;
            if (old & TaskStateBase::started) {
                h->unlock();
                continue;
            }
            h->set_flags(TaskStateBase::claimed);
            h->unlock();
            return h;
        }
        return {};
    }

private:
    const std::int64_t cap_;
    alignas(cache_line) std::atomic<std::int64_t> used_{0};
    std::atomic<std::uint32_t> waiters_{0};
    Word epoch_{0};
    std::mutex order_mutex_;
    std::deque<StateHold> order_;
};

} // namespace taskdist::detail
