// taskdist: RoundRobin: task i goes to worker i mod n.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "../distributor.hpp"

namespace taskdist {

/// Per-worker queues and an exact rotation for a single submitting thread
/// (with several, each task still takes the next turn of one shared
/// counter). Predictable, but not work-conserving: a task queued behind a
/// slow one waits for it. No settings.
struct RoundRobin {
    template <class Item>
    class queue {
    public:
        queue(const RoundRobin&, std::size_t workers) : lanes_(workers) {}

        Placement push(Item&& item, const TaskInfo&, WorkerSet workers) {
            std::size_t w = static_cast<std::size_t>(next_.fetch_add(1, std::memory_order_relaxed) % workers.size());
            lanes_.push(w, std::move(item));
            return Placement::on(w);
        }
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        PerWorkerQueues<Item> lanes_;
        std::atomic<std::uint64_t> next_{0};
    };
};

static_assert(Distributor<RoundRobin>, "RoundRobin must model taskdist::Distributor");

} // namespace taskdist
