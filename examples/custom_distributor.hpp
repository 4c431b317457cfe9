// A user-written distributor: "power of two choices".
//
// taskdist::LeastBusy scans every worker on every submit. That is fine for a
// handful of workers, but the scan costs O(workers), and producers that submit
// at the same moment all see the same least-loaded worker and pile onto it.
// Sampling two workers at random and taking the less loaded of the pair keeps
// most of the balance (the classic result: with n tasks on n workers the
// busiest queue grows like log log n, against log n / log log n for one
// random choice) at a constant cost, and racing producers sample different
// pairs, so they do not herd.
//
// Written only against the public policy interface (distributor.hpp): the
// per-worker queues come from taskdist::PerWorkerQueues, so push() is all
// this policy has to decide.
#pragma once

#include <taskdist/distributor.hpp>
#include <taskdist/distributors/sticky.hpp>  // for Sticky::mix, a 64-bit mixer

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

namespace example {

/// Per-worker queues; each task goes to the less loaded of two workers
/// sampled at submit time.
struct PowerOfTwoChoices {
    /// Seeds the sampling sequence; two pools with different seeds sample
    /// different pairs. Any value is valid.
    std::uint64_t seed = 0x2545f4914f6cdd1dull;

    template <class Item>
    class queue {
    public:
        queue(const PowerOfTwoChoices& settings, std::size_t workers) : lanes_(workers), state_(settings.seed) {}

        /// Thread-safe: called by any number of producers at once. The sample
        /// is one atomic increment; the loads are read without locks, so they
        /// are hints that may be stale by the time the task is queued.
        taskdist::Placement push(Item&& item, const taskdist::TaskInfo&, taskdist::WorkerSet workers) {
            const std::size_t n = workers.size();
            std::size_t w = 0;
            if (n > 1) {
                // A Weyl sequence through a mixer: a random-looking stream
                // that needs no lock and no per-thread generator state.
                const std::uint64_t r = taskdist::Sticky::mix(state_.fetch_add(0x9e3779b97f4a7c15ull, std::memory_order_relaxed));
                const std::size_t a = static_cast<std::size_t>(r % n);
                // Two distinct workers: sampling one worker twice would make
                // it a single choice, and then a held worker could be picked.
                const std::size_t b = (a + 1 + static_cast<std::size_t>((r >> 32) % (n - 1))) % n;
                w = load(workers, b) < load(workers, a) ? b : a;
            }
            lanes_.push(w, std::move(item));
            return taskdist::Placement::on(w);
        }

        /// Only worker w's thread calls this, as the concept requires.
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }

        /// Thread-safe.
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        std::uint64_t load(const taskdist::WorkerSet& workers, std::size_t w) const noexcept {
            return lanes_.queued(w) + workers[w].running();
        }

        taskdist::PerWorkerQueues<Item> lanes_;
        std::atomic<std::uint64_t> state_;
    };
};

// Checked here, so a mistake in the policy fails with the concept's message
// instead of deep inside WorkerPool.
static_assert(taskdist::Distributor<PowerOfTwoChoices>, "PowerOfTwoChoices must model taskdist::Distributor");

} // namespace example
