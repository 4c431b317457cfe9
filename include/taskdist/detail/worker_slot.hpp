// taskdist: the state of one worker slot, owned by the pool. A slot outlives
// the threads that serve it: a replacement thread takes over its counters
// and its queue.
#pragma once

#include <atomic>
#include <cstdint>

#include "../stats.hpp"
#include "platform.hpp"

namespace taskdist::detail {

/// Counters are written only by the thread serving the slot (plain load +
/// store, no locked instructions) and read by anyone; when a hung thread is
/// replaced, the supervisor writes them between the old thread's last write
/// and the new thread's start. Lines that other threads write or read on the
/// hot path are kept apart from the counters, so a producer checking the
/// worker does not pull the counters' line away from it on every task.
struct alignas(cache_line) WorkerSlot {
    std::atomic<std::uint64_t> started{0};    ///< attempts begun
    std::atomic<std::uint64_t> returned{0};   ///< attempts whose handler returned (or was abandoned as hung)
    std::atomic<std::uint64_t> completed{0};  ///< tasks this slot resolved with a value
    std::atomic<std::uint64_t> failed{0};     ///< tasks this slot resolved with the handler's exception
    std::atomic<std::uint64_t> busy_ns{0};
    /// Attempts begun here that ended without this worker resolving them:
    /// cancelled or timed out while running, or retried. Written by any
    /// thread (fetch_add): cancels and timeouts come from elsewhere.
    std::atomic<std::uint64_t> ended_other{0};
    LatencyHistogram wait_hist;
    LatencyHistogram run_hist;
    RateWindow rate;

    /// 1 while the worker sleeps (or is about to); whoever swaps it to 0 owns
    /// the duty to wake the worker. See PoolCore for the protocol.
    alignas(cache_line) std::atomic<std::uint32_t> sleeping{0};
    /// When the worker last went to sleep with nothing to do; 0 while busy.
    /// Written by the worker, read (and restarted) by the pool's scaler.
    std::atomic<std::int64_t> idle_since{0};

    /// Read by producers (through WorkerView::available) on every push under
    /// per-worker policies; written only when the worker breaks or recovers.
    alignas(cache_line) std::atomic<std::uint32_t> down{0};
    std::atomic<std::uint64_t> replaced_hung{0};
    std::atomic<std::uint64_t> replaced_fault{0};
    std::atomic<std::uint64_t> factory_failures{0};
    /// Failures in a row (factory throws, WorkerFault); 0 after a success.
    std::atomic<std::uint32_t> failures_in_row{0};

    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by,
                     std::memory_order order = std::memory_order_relaxed) noexcept {
        a.store(a.load(std::memory_order_relaxed) + by, order);
    }

    /// Tasks resolved by this slot's worker. Read before `started` when both
    /// are needed, so that a difference never underflows.
    std::uint64_t resolved() const noexcept {
        return completed.load(std::memory_order_acquire) + failed.load(std::memory_order_acquire);
    }

    /// Attempts running now (0 or 1): returned is read first, so it can only
    /// lag started.
    std::uint64_t running() const noexcept {
        const std::uint64_t r = returned.load(std::memory_order_acquire);
        const std::uint64_t s = started.load(std::memory_order_acquire);
        return s > r ? s - r : 0;
    }

    std::uint64_t replacements() const noexcept {
        return replaced_hung.load(std::memory_order_relaxed) + replaced_fault.load(std::memory_order_relaxed) +
               factory_failures.load(std::memory_order_relaxed);
    }
};

} // namespace taskdist::detail
