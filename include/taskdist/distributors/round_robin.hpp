// taskdist: RoundRobin: task i goes to worker i mod n.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "../distributor.hpp"

namespace taskdist {

/// Per-worker queues and an exact rotation for a single submitting thread
/// while every worker is healthy
/// (with several, each task still takes the next turn of one shared
/// counter). Predictable, but not work-conserving: a task queued behind a
/// slow one waits for it. No settings.
struct RoundRobin {
    static constexpr bool reads_submit_time = false;
    template <class Item>
    class queue {
    public:
        queue(const RoundRobin&, std::size_t workers) : lanes_(workers) {}

        Placement push(Item&& item, const TaskInfo& info, WorkerSet workers) {
            const std::size_t n = workers.size();
            // A 32-bit division is several times quicker than a 64-bit one;
            // the turn skips once when the counter wraps, every 2^32 tasks.
            std::size_t w = static_cast<std::uint32_t>(next_.fetch_add(1, std::memory_order_relaxed)) %
                            static_cast<std::uint32_t>(n);
            // A worker that is down (or a retry's previous worker) passes its
            // turn to the next eligible one; with all healthy this is exact.
            for (std::size_t i = 0; i < n && !workers.eligible(w, info.previous_worker); ++i) w = (w + 1) % n;
            lanes_.push(w, std::move(item));
            return Placement::on(w);
        }
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        PerWorkerQueues<Item> lanes_;
        // Written by every producer: on a line of its own.
        alignas(detail::cache_line) std::atomic<std::uint64_t> next_{0};
    };
};

static_assert(Distributor<RoundRobin>, "RoundRobin must model taskdist::Distributor");

} // namespace taskdist
