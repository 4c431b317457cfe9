// taskdist: a counter that many threads add to without sharing a cache line.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "platform.hpp"

namespace taskdist::detail {

/// A counter incremented by many threads: 16 cache-line stripes, a stripe
/// per thread, so producers do not fight over one line. Reading sums them.
/// Thread-safe. Every operation is seq_cst: the pool's balance check orders
/// this sum against its other counters (PoolCore's accounting). sum() is
/// exact once writers are quiet; while they run it reads each stripe at a
/// different moment, so it is not a snapshot.
class StripedCounter {
public:
    void add(std::uint64_t n) noexcept { stripes_[mine()].v.fetch_add(n, std::memory_order_seq_cst); }
    void sub(std::uint64_t n) noexcept { stripes_[mine()].v.fetch_sub(n, std::memory_order_seq_cst); }
    std::uint64_t sum() const noexcept {
        std::uint64_t s = 0;
        for (const auto& st : stripes_) s += st.v.load(std::memory_order_seq_cst);
        return s;
    }

private:
    static constexpr std::size_t count = 16;
    static std::size_t mine() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local std::size_t index = next.fetch_add(1, std::memory_order_relaxed) % count;
        return index;
    }
    struct alignas(cache_line) Stripe {
        std::atomic<std::uint64_t> v{0};
    };
    Stripe stripes_[count];
};

} // namespace taskdist::detail
