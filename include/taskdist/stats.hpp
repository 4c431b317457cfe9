// taskdist: statistics snapshots, and the single-writer recorders behind them.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace taskdist {

/// Percentiles of a latency distribution. Each percentile is within about 3%
/// of the exact value (log-bucketed, 16 buckets per power of two) and never
/// above the exact max.
struct LatencySummary {
    std::uint64_t count = 0;
    std::chrono::nanoseconds mean{0};
    std::chrono::nanoseconds p50{0};
    std::chrono::nanoseconds p90{0};
    std::chrono::nanoseconds p99{0};
    std::chrono::nanoseconds max{0};
    /// The total of all values (exact), for rates and Prometheus' _sum.
    std::chrono::nanoseconds sum{0};

    /// A coarse cumulative histogram, exact at its bounds: below[i] counts
    /// the values under histogram_bound(i) = 2^(10 + 2i) ns, from 1.024 us
    /// to 17.2 s by powers of 4; values above the last bound are in count only.
    static constexpr std::size_t histogram_bounds = 13;
    static constexpr std::chrono::nanoseconds histogram_bound(std::size_t i) noexcept {
        return std::chrono::nanoseconds(std::int64_t{1} << (10 + 2 * i));
    }
    std::array<std::uint64_t, histogram_bounds> below{};
};

/// One worker's counters, as of a PoolStats snapshot.
struct WorkerStats {
    std::size_t index = 0;
    std::uint64_t queued = 0;     ///< waiting in this worker's own queue (0 under shared-queue distributors)
    std::uint64_t running = 0;    ///< started and not yet resolved
    std::uint64_t completed = 0;  ///< resolved with a value
    std::uint64_t failed = 0;     ///< the handler threw
    std::chrono::nanoseconds busy_time{0};
    LatencySummary wait;  ///< submit to start
    LatencySummary run;   ///< start to finish
    /// Times a fresh thread took this slot after its thread hung.
    std::uint64_t replaced_hung = 0;
    /// Times the worker's state was rebuilt after the handler threw WorkerFault.
    std::uint64_t replaced_fault = 0;
    /// Times the per-worker factory threw.
    std::uint64_t factory_failures = 0;
    /// False while the slot is down, waiting to rebuild its state.
    bool available = true;
    /// False for a slot the pool scaled away (it keeps its figures).
    bool active = true;
};

/// A snapshot of a pool. In every snapshot
///   submitted == completed + failed + timed_out + cancelled + rejected + queued + running,
/// and after wait_idle() returns, queued == running == 0. A task counts
/// once, by its outcome, however many attempts it took. `running` counts
/// unresolved tasks that a worker has started: a handler still returning
/// after its task was cancelled or timed out is no longer counted (its
/// thread is busy, which taskdist::WorkerView::running() does show).
struct PoolStats {
    std::uint64_t submitted = 0;
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;
    std::uint64_t queued = 0;
    std::uint64_t running = 0;
    std::size_t workers = 0;
    LatencySummary wait;
    LatencySummary run;
    /// Tasks resolved per second over the last full second.
    double throughput = 0.0;
    std::vector<WorkerStats> per_worker;
    /// Resolved with TaskTimeout (run time or deadline passed).
    std::uint64_t timed_out = 0;
    /// Resolved with TaskCancelled.
    std::uint64_t cancelled = 0;
    /// Attempts that failed and were queued again (not outcomes: a task
    /// retried twice and then completed counts 2 here and 1 in completed).
    std::uint64_t retried = 0;
    /// Accepted tasks dropped from a full queue (Overflow::drop_oldest):
    /// resolved TaskRejected.
    std::uint64_t rejected = 0;
    /// Submissions refused with QueueFull (or an empty try_submit()): never
    /// accepted, so not in `submitted`.
    std::uint64_t refused = 0;
    /// Accepted tasks that ran on the submitting thread (Overflow::caller_runs);
    /// counted in `submitted` and in `completed` or `failed`.
    std::uint64_t ran_on_caller = 0;
    /// Tasks a worker ran inline while waiting for them from another task
    /// of the pool (a nested wait); counted in `submitted` and in
    /// `completed` or `failed`, not in any worker's figures.
    std::uint64_t ran_inline = 0;
    /// Producers blocked in submit()/post() now, waiting for room
    /// (Overflow::block): a gauge of back-pressure.
    std::uint64_t blocked = 0;
    /// Dispatch is paused (pause() without resume() yet).
    bool paused = false;
};

namespace detail {

/// Log-bucketed latency histogram written by one thread and read by any.
/// Values below 16 ns have exact buckets; above, each power of two is split
/// into 16 buckets, so a bucket's midpoint is within 1/32 of any value in it.
class LatencyHistogram {
public:
    static constexpr int sub_bits = 4;
    static constexpr std::uint64_t sub_count = 1u << sub_bits;
    static constexpr int max_exponent = 44;  // ~4.9 hours; longer values land in the last bucket
    static constexpr std::size_t bucket_count = sub_count + (max_exponent - sub_bits + 1) * sub_count;

    static std::size_t bucket_of(std::uint64_t ns) noexcept {
        if (ns < sub_count) return static_cast<std::size_t>(ns);
        int e = static_cast<int>(std::bit_width(ns)) - 1;
        if (e > max_exponent) return bucket_count - 1;
        std::uint64_t sub = (ns >> (e - sub_bits)) & (sub_count - 1);
        return static_cast<std::size_t>(sub_count + static_cast<std::uint64_t>(e - sub_bits) * sub_count + sub);
    }

    /// The value reported for a bucket: its midpoint (exact below 16 ns).
    static std::uint64_t representative(std::size_t bucket) noexcept {
        if (bucket < sub_count) return bucket;
        std::size_t e = (bucket - sub_count) / sub_count + sub_bits;
        std::uint64_t sub = (bucket - sub_count) % sub_count;
        std::uint64_t width = std::uint64_t{1} << (e - sub_bits);
        std::uint64_t low = (sub_count + sub) << (e - sub_bits);
        return low + width / 2;
    }

    /// Single writer only: plain load + store keeps the hot path free of
    /// locked instructions; readers see each counter torn-free.
    /// `weight`: how many values this one stands for (a sampled value).
    void record(std::uint64_t ns, std::uint64_t weight = 1) noexcept {
        bump(buckets_[bucket_of(ns)], weight);
        bump(count_, weight);
        bump(sum_, ns * weight);
        if (ns > max_.load(std::memory_order_relaxed)) max_.store(ns, std::memory_order_relaxed);
    }

    /// Adds this histogram's buckets into `into` (a merge for summaries).
    void accumulate(std::vector<std::uint64_t>& into, std::uint64_t& count, std::uint64_t& sum,
                    std::uint64_t& max) const {
        into.resize(bucket_count);
        for (std::size_t i = 0; i < bucket_count; ++i) into[i] += buckets_[i].load(std::memory_order_relaxed);
        count += count_.load(std::memory_order_relaxed);
        sum += sum_.load(std::memory_order_relaxed);
        std::uint64_t m = max_.load(std::memory_order_relaxed);
        if (m > max) max = m;
    }

    LatencySummary summary() const {
        std::vector<std::uint64_t> b;
        std::uint64_t c = 0, s = 0, m = 0;
        accumulate(b, c, s, m);
        return summarize(b, s, m);
    }

    static LatencySummary summarize(const std::vector<std::uint64_t>& buckets, std::uint64_t sum, std::uint64_t max) {
        LatencySummary out;
        std::uint64_t total = 0;
        for (auto v : buckets) total += v;  // the buckets, not count_: they are read as one set
        out.count = total;
        if (total == 0) return out;
        out.sum = std::chrono::nanoseconds(static_cast<std::int64_t>(sum));
        // Each bound is a power of two, so a bucket edge: the counts are exact.
        for (std::size_t i = 0, b = 0; i < LatencySummary::histogram_bounds; ++i) {
            const std::size_t edge = bucket_of(static_cast<std::uint64_t>(LatencySummary::histogram_bound(i).count()));
            std::uint64_t under = i ? out.below[i - 1] : 0;
            for (; b < edge && b < buckets.size(); ++b) under += buckets[b];
            out.below[i] = under;
        }
        out.mean = std::chrono::nanoseconds(static_cast<std::int64_t>(sum / total));
        out.max = std::chrono::nanoseconds(static_cast<std::int64_t>(max));
        auto pct = [&](double q) {
            auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
            if (rank == 0) rank = 1;
            std::uint64_t seen = 0;
            for (std::size_t i = 0; i < buckets.size(); ++i) {
                seen += buckets[i];
                if (seen >= rank) {
                    std::uint64_t v = representative(i);
                    return std::chrono::nanoseconds(static_cast<std::int64_t>(v < max ? v : max));
                }
            }
            return out.max;
        };
        out.p50 = pct(0.50);
        out.p90 = pct(0.90);
        out.p99 = pct(0.99);
        return out;
    }

private:
    static void bump(std::atomic<std::uint64_t>& a, std::uint64_t by) noexcept {
        a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
    }

    std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_{0};
    std::atomic<std::uint64_t> max_{0};
};

/// Events per 100 ms slot over a ring of 16 slots; single writer. A slot is
/// one 64-bit word (slot id in the high 24 bits, count in the low 40), so a
/// reader never pairs a new id with an old count. Times are nanoseconds,
/// or any unit set with set_slot_length(100 ms in that unit) that the
/// writer and the readers share.
class RateWindow {
public:
    static constexpr std::int64_t slot_ns = 100'000'000;
    static constexpr std::size_t slots = 16;

    /// Before the first record(): the length of a slot in the unit of the
    /// times given.
    void set_slot_length(std::int64_t length) noexcept {
        length_ = length > 0 ? length : 1;
        until_ = 0;
    }

    void record(std::int64_t now, std::uint64_t events = 1) noexcept {
        // The writer remembers its slot's bounds: a division per event would
        // cost more than the rest of this.
        if (now >= until_ || now < from_) {
            id_ = static_cast<std::uint64_t>(now / length_) & id_mask;
            from_ = now - now % length_;
            until_ = from_ + length_;
        }
        auto& s = ring_[id_ % slots];
        std::uint64_t v = s.load(std::memory_order_relaxed);
        std::uint64_t next = (v >> count_bits) == id_ ? v + events : (id_ << count_bits) | events;
        s.store(next, std::memory_order_relaxed);
    }

    /// Events in the 10 whole slots before the current one: the last full second.
    std::uint64_t last_second(std::int64_t now) const noexcept {
        std::uint64_t cur = static_cast<std::uint64_t>(now / length_);
        std::uint64_t total = 0;
        for (std::uint64_t back = 1; back <= 10 && back <= cur; ++back) {
            std::uint64_t id = (cur - back) & id_mask;
            std::uint64_t v = ring_[id % slots].load(std::memory_order_relaxed);
            if ((v >> count_bits) == id) total += v & count_mask;
        }
        return total;
    }

private:
    static constexpr int count_bits = 40;
    static constexpr std::uint64_t count_mask = (std::uint64_t{1} << count_bits) - 1;
    static constexpr std::uint64_t id_mask = (std::uint64_t{1} << (64 - count_bits)) - 1;
    std::array<std::atomic<std::uint64_t>, slots> ring_{};
    std::int64_t length_ = slot_ns;
    // The writer's alone.
    std::uint64_t id_ = 0;
    std::int64_t from_ = 0;
    std::int64_t until_ = 0;
};

} // namespace detail
} // namespace taskdist
