// taskdist: {fmt} formatters for the statistics snapshots. Opt-in: include
// this header (and link fmt) to use them; the rest of taskdist never needs fmt.
//
//   fmt::print("{}\n", pool.stats());    // one line: counts, throughput, latencies
//   fmt::print("{:t}\n", pool.stats());  // a table, one row per worker, and a total row
//   fmt::print("{}\n", s.per_worker[0]); // one worker on one line
//   fmt::print("{}\n", s.run);           // count, mean, p50/p90/p99, max
//
// Durations print with a unit chosen for three significant digits
// (850ns, 12.3us, 1.47ms, 2.10s). The formatters are stateless and as
// thread-safe as fmt itself.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "stats.hpp"

namespace taskdist {

/// A duration for people: three significant digits and a unit.
inline std::string human_duration(std::chrono::nanoseconds d) {
    const double ns = static_cast<double>(d.count());
    const double a = ns < 0 ? -ns : ns;
    auto three = [](double v, const char* unit) {
        if (v >= 100) return fmt::format("{:.0f}{}", v, unit);
        if (v >= 10) return fmt::format("{:.1f}{}", v, unit);
        return fmt::format("{:.2f}{}", v, unit);
    };
    if (a < 1e3) return fmt::format("{}ns", d.count());
    if (a < 1e6) return three(ns / 1e3, "us");
    if (a < 1e9) return three(ns / 1e6, "ms");
    return three(ns / 1e9, "s");
}

namespace detail {

/// Accepts an empty spec, or the single letter `allowed` (0: none).
template <class Ctx>
constexpr auto parse_flag(Ctx& ctx, char allowed, bool& set) {
    auto it = ctx.begin();
    if (it != ctx.end() && allowed != 0 && *it == allowed) {
        set = true;
        ++it;
    }
    if (it != ctx.end() && *it != '}') throw fmt::format_error("taskdist: unknown format spec for a statistics type");
    return it;
}

/// parse() for formatters that take no spec.
struct NoFormatSpec {
    constexpr auto parse(fmt::format_parse_context& ctx) {
        bool unused = false;
        return parse_flag(ctx, 0, unused);
    }
};

} // namespace detail
} // namespace taskdist

// The specializations below live in fmt's namespace, which the API reference
// leaves out; their use is shown at the top of this file.
/// @cond FMT_SPECIALIZATIONS

/// "n=1200 mean=1.20ms p50=1.10ms p90=2.00ms p99=3.90ms max=5.00ms" ("n=0" when empty).
template <>
struct fmt::formatter<taskdist::LatencySummary> : taskdist::detail::NoFormatSpec {
    template <class FormatContext>
    auto format(const taskdist::LatencySummary& l, FormatContext& ctx) const {
        using taskdist::human_duration;
        if (l.count == 0) return fmt::format_to(ctx.out(), "n=0");
        return fmt::format_to(ctx.out(), "n={} mean={} p50={} p90={} p99={} max={}", l.count, human_duration(l.mean),
                              human_duration(l.p50), human_duration(l.p90), human_duration(l.p99),
                              human_duration(l.max));
    }
};

/// One line: "worker 2: completed 10 failed 1 queued 0 running 1 busy 12.0ms
/// wait p99 1.00ms run p99 2.00ms", plus "down" / "retired" and replacement
/// counts when they apply.
template <>
struct fmt::formatter<taskdist::WorkerStats> : taskdist::detail::NoFormatSpec {
    template <class FormatContext>
    auto format(const taskdist::WorkerStats& w, FormatContext& ctx) const {
        using taskdist::human_duration;
        auto out = fmt::format_to(ctx.out(), "worker {}: completed {} failed {} queued {} running {} busy {} wait p99 {} run p99 {}",
                                  w.index, w.completed, w.failed, w.queued, w.running, human_duration(w.busy_time),
                                  human_duration(w.wait.p99), human_duration(w.run.p99));
        if (!w.active) out = fmt::format_to(out, " retired");
        if (!w.available) out = fmt::format_to(out, " down");
        const std::uint64_t replaced = w.replaced_hung + w.replaced_fault + w.factory_failures;
        if (replaced) {
            out = fmt::format_to(out, " replaced {} (hung {}, fault {}, factory {})", replaced, w.replaced_hung,
                                 w.replaced_fault, w.factory_failures);
        }
        return out;
    }
};

/// "{}": one line of pool totals. "{:t}": a table with a row per worker and
/// a total row (the per-worker rows of a slot scaled away are marked).
template <>
struct fmt::formatter<taskdist::PoolStats> {
    bool table = false;

    constexpr auto parse(format_parse_context& ctx) { return taskdist::detail::parse_flag(ctx, 't', table); }

    template <class FormatContext>
    auto format(const taskdist::PoolStats& s, FormatContext& ctx) const {
        return table ? format_table(s, ctx) : format_line(s, ctx);
    }

private:
    template <class FormatContext>
    static auto format_line(const taskdist::PoolStats& s, FormatContext& ctx) {
        using taskdist::human_duration;
        auto out = fmt::format_to(ctx.out(),
                                  "workers {} | submitted {} completed {} failed {} timed_out {} cancelled {} rejected {}"
                                  " | queued {} running {} | {:.1f}/s | wait p50 {} p99 {} | run p50 {} p99 {}",
                                  s.workers, s.submitted, s.completed, s.failed, s.timed_out, s.cancelled, s.rejected,
                                  s.queued, s.running, s.throughput, human_duration(s.wait.p50),
                                  human_duration(s.wait.p99), human_duration(s.run.p50), human_duration(s.run.p99));
        if (s.retried) out = fmt::format_to(out, " | retried {}", s.retried);
        if (s.refused) out = fmt::format_to(out, " | refused {}", s.refused);
        if (s.blocked) out = fmt::format_to(out, " | blocked {}", s.blocked);
        if (s.paused) out = fmt::format_to(out, " | paused");
        return out;
    }

    template <class FormatContext>
    static auto format_table(const taskdist::PoolStats& s, FormatContext& ctx) {
        using taskdist::human_duration;
        constexpr const char* row = "{:>7} {:>8} {:>7} {:>7} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}\n";
        auto out = fmt::format_to(ctx.out(), row, "worker", "state", "queued", "running", "completed", "failed", "busy",
                                  "wait p50", "wait p99", "run p50", "run p99");
        std::chrono::nanoseconds busy{0};
        for (const auto& w : s.per_worker) {
            const char* state = !w.active ? "retired" : !w.available ? "down" : "up";
            out = fmt::format_to(out, row, w.index, state, w.queued, w.running, w.completed, w.failed,
                                 human_duration(w.busy_time), human_duration(w.wait.p50), human_duration(w.wait.p99),
                                 human_duration(w.run.p50), human_duration(w.run.p99));
            busy += w.busy_time;
        }
        return fmt::format_to(out, "{:>7} {:>8} {:>7} {:>7} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}", "total",
                              s.paused ? "paused" : "", s.queued, s.running, s.completed, s.failed,
                              human_duration(busy), human_duration(s.wait.p50), human_duration(s.wait.p99),
                              human_duration(s.run.p50), human_duration(s.run.p99));
    }
};
/// @endcond
