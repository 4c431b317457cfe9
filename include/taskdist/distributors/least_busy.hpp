// taskdist: LeastBusy: each task goes to the worker with the fewest queued +
// running tasks at submit time.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "../distributor.hpp"

namespace taskdist {

/// Per-worker queues; a task avoids workers held by long tasks. Ties go to
/// a rotating choice so equal workers share the load. The load is read
/// without locks, so two producers racing may pick the same worker. A
/// worker that runs out takes the newer half of the longest queue whose
/// worker is busy, before it sleeps: counts decide placement, but they
/// cannot see how long a task will run, and a burst placed before any ran
/// would otherwise finish as late as its unluckiest queue. (Not for a task
/// type whose move can throw: see PerWorkerQueues::steal.) No settings.
struct LeastBusy {
    static constexpr bool reads_submit_time = false;
    template <class Item>
    class queue {
    public:
        queue(const LeastBusy&, std::size_t workers) : lanes_(workers) {}

        Placement push(Item&& item, const TaskInfo& info, WorkerSet workers) {
            std::size_t start = static_cast<std::size_t>(rotate_.fetch_add(1, std::memory_order_relaxed));
            std::size_t w = lanes_.least_loaded(workers, start, info.previous_worker);
            lanes_.push(w, std::move(item));
            return Placement::on(w);
        }
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }
        std::optional<Item> try_steal(std::size_t w) { return lanes_.steal(w); }
        void done(std::size_t w) noexcept { lanes_.done(w); }
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        PerWorkerQueues<Item> lanes_;
        // Written by every producer: on a line of its own.
        alignas(detail::cache_line) std::atomic<std::uint64_t> rotate_{0};
    };
};

static_assert(Distributor<LeastBusy>, "LeastBusy must model taskdist::Distributor");

} // namespace taskdist
