// taskdist: the state of one worker slot, owned by the pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>

#include "../stats.hpp"
#include "platform.hpp"

namespace taskdist::detail {

/// Counters are written only by the thread that owns the slot (plain
/// load + store, no locked instructions) and read by anyone. The parking word
/// is written by producers too, so it sits on a cache line of its own: a
/// producer checking whether the worker sleeps must not pull the counters'
/// line away from the worker on every task.
struct alignas(cache_line) WorkerSlot {
    std::atomic<std::uint64_t> started{0};
    std::atomic<std::uint64_t> completed{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> busy_ns{0};
    LatencyHistogram wait_hist;
    LatencyHistogram run_hist;
    RateWindow rate;
    /// Stop source of the task running now; TaskContext points at it.
    std::stop_source task_stop;

    /// 1 while the worker sleeps (or is about to); whoever swaps it to 0 owns
    /// the duty to wake the worker. See PoolCore for the protocol.
    alignas(cache_line) std::atomic<std::uint32_t> sleeping{0};

    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by,
                     std::memory_order order = std::memory_order_relaxed) noexcept {
        a.store(a.load(std::memory_order_relaxed) + by, order);
    }

    /// Resolved tasks. Read before `started` when both are needed, so that
    /// started - resolved never underflows.
    std::uint64_t resolved() const noexcept {
        return completed.load(std::memory_order_acquire) + failed.load(std::memory_order_acquire);
    }
};

} // namespace taskdist::detail
