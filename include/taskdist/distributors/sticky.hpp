// taskdist: Sticky: key affinity by rendezvous (highest-random-weight) hashing.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "../distributor.hpp"

namespace taskdist {

/// Tasks with equal SubmitOptions::key run on the same worker, so per-key
/// state (a session, a cache shard) stays warm and per-key order holds.
/// Rendezvous hashing scores every worker for the key and takes the best:
/// when the worker set changes, only the keys of the worker that came or went
/// move. Tasks without a key go to the least busy worker.
struct Sticky {
    static constexpr bool reads_submit_time = false;
    /// Mixed into every score; pools with different seeds spread keys differently.
    std::uint64_t seed = 0x9e3779b97f4a7c15ull;

    /// The worker a key maps to among `workers` workers. Pure: same inputs,
    /// same answer.
    static std::size_t owner(std::uint64_t key, std::size_t workers, std::uint64_t seed) noexcept {
        return owner_if(key, workers, seed, [](std::size_t) { return true; });
    }

    /// The highest-scoring worker among those `allowed` accepts (worker 0 if
    /// none does). Skipping a worker moves only the keys it would have owned.
    template <class Allowed>
    static std::size_t owner_if(std::uint64_t key, std::size_t workers, std::uint64_t seed, Allowed allowed) noexcept {
        std::size_t best = 0;
        std::uint64_t best_score = 0;
        bool found = false;
        for (std::size_t w = 0; w < workers; ++w) {
            if (!allowed(w)) continue;
            std::uint64_t score = mix(key ^ mix(seed + w));
            if (!found || score > best_score) {
                found = true;
                best = w;
                best_score = score;
            }
        }
        return best;
    }

    /// splitmix64's finaliser: cheap, and every input bit reaches every output bit.
    static constexpr std::uint64_t mix(std::uint64_t x) noexcept {
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 31;
        return x;
    }

    template <class Item>
    class queue {
    public:
        queue(const Sticky& settings, std::size_t workers) : lanes_(workers), seed_(settings.seed) {}

        Placement push(Item&& item, const TaskInfo& info, WorkerSet workers) {
            // A down worker's keys (and a retry's previous worker) go to
            // their next-best worker while it is out; they come back after.
            const std::size_t avoid = info.previous_worker;
            std::size_t w = info.key
                                ? owner_if(*info.key, workers.size(), seed_,
                                           [&](std::size_t c) { return workers.eligible(c, avoid); })
                                : lanes_.least_loaded(workers,
                                                      static_cast<std::size_t>(rotate_.fetch_add(1, std::memory_order_relaxed)),
                                                      avoid);
            lanes_.push(w, std::move(item));
            return Placement::on(w);
        }
        std::optional<Item> try_pop(std::size_t w) { return lanes_.try_pop(w); }
        void done(std::size_t w) noexcept { lanes_.done(w); }
        std::size_t queued(std::size_t w) const noexcept { return lanes_.queued(w); }

    private:
        PerWorkerQueues<Item> lanes_;
        std::uint64_t seed_;
        // Written by every producer: on a line of its own.
        alignas(detail::cache_line) std::atomic<std::uint64_t> rotate_{0};
    };
};

static_assert(Distributor<Sticky>, "Sticky must model taskdist::Distributor");

} // namespace taskdist
