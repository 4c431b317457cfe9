// taskdist demo: one skewed request workload, replayed through every
// distributor, with live per-worker progress and a closing comparison.
//
// The workload is a fixed-seed trace of 3,000 requests arriving at about
// 70% of the pool's capacity: most take ~1 ms (simulated I/O), one in ten
// takes 15-25 ms, and a few hot users send most requests (their id is the
// Sticky key). Latency is measured from submit to result.
//
// Usage: demo [--requests N] [--workers N] [--quiet]
#include <taskdist/taskdist.hpp>

#include "demo_options.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Request {
    std::uint64_t user;
    int priority;
    std::chrono::microseconds service;
    std::chrono::microseconds arrival;  // offset from the start of the replay
};

struct Settings {
    std::size_t requests = 3000;
    std::size_t workers = 4;
    bool live = true;
};

std::vector<Request> make_trace(const Settings& s) {
    std::mt19937_64 rng(20261124);
    std::bernoulli_distribution is_long(0.10);
    std::uniform_int_distribution<int> short_us(600, 1400), long_us(15000, 25000);
    // A few users send most of the traffic (roughly Zipf-like).
    std::discrete_distribution<int> user_pick({30, 15, 10, 8, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1});
    // Mean service ~ 0.9 * 1 ms + 0.1 * 20 ms = 2.9 ms; aim at ~70% load.
    const double capacity_per_us = static_cast<double>(s.workers) / 2900.0;
    std::exponential_distribution<double> gap(capacity_per_us * 0.7);
    std::vector<Request> trace;
    double t = 0;
    for (std::size_t i = 0; i < s.requests; ++i) {
        bool slow = is_long(rng);
        int user = user_pick(rng);
        t += gap(rng);
        trace.push_back(Request{static_cast<std::uint64_t>(user), slow ? 0 : 1,
                                std::chrono::microseconds(slow ? long_us(rng) : short_us(rng)),
                                std::chrono::microseconds(static_cast<long>(t))});
    }
    return trace;
}

struct Row {
    std::string name;
    double throughput = 0;
    double p50_ms = 0, p99_ms = 0;
    std::vector<std::uint64_t> per_worker;
};

double percentile_ms(std::vector<std::int64_t> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t idx = static_cast<std::size_t>(std::lround(q * static_cast<double>(v.size() - 1)));
    return static_cast<double>(v[idx]) / 1e6;
}

void draw(const char* name, const taskdist::PoolStats& st, std::size_t total, bool first) {
    if (!first) std::printf("\x1b[%zuA", st.per_worker.size() + 1);
    std::printf("\x1b[2K%-12s %6llu / %zu done, %4llu queued\n", name,
                static_cast<unsigned long long>(st.completed), total, static_cast<unsigned long long>(st.queued));
    for (const auto& w : st.per_worker) {
        int bar = static_cast<int>(std::min<std::uint64_t>(50, w.completed * 50 * st.per_worker.size() / (total + 1)));
        std::printf("\x1b[2K  worker %zu %s %-50.*s %5llu done %3llu queued\n", w.index, w.running ? "*" : " ", bar,
                    "##################################################",
                    static_cast<unsigned long long>(w.completed), static_cast<unsigned long long>(w.queued));
    }
    std::fflush(stdout);
}

template <class Dist>
Row replay(const char* name, const std::vector<Request>& trace, const Settings& s, Dist dist = {}) {
    // The handler simulates a request: mostly waiting on I/O, as a server would.
    auto handler = [](Request r) {
        std::this_thread::sleep_for(r.service);
        return Clock::now();
    };
    taskdist::WorkerPool<Request, Clock::time_point, Dist> pool(handler, {.workers = s.workers, .name = name}, dist);

    std::atomic<bool> done{false};
    std::thread painter([&] {
        bool first = true;
        while (!done.load()) {
            if (s.live) draw(name, pool.stats(), trace.size(), first);
            first = false;
            std::this_thread::sleep_for(100ms);  // a display refresh, not synchronisation
        }
    });

    std::vector<taskdist::TaskHandle<Clock::time_point>> handles;
    std::vector<Clock::time_point> sent;
    handles.reserve(trace.size());
    sent.reserve(trace.size());
    const auto start = Clock::now();
    for (const Request& r : trace) {
        std::this_thread::sleep_until(start + r.arrival);  // open-loop arrivals, as from real clients
        sent.push_back(Clock::now());
        handles.push_back(pool.submit(r, {.priority = r.priority, .key = r.user}));
    }
    std::vector<std::int64_t> latency;
    latency.reserve(trace.size());
    Clock::time_point last = start;
    for (std::size_t i = 0; i < handles.size(); ++i) {
        Clock::time_point finished = handles[i].get();
        last = std::max(last, finished);
        latency.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(finished - sent[i]).count());
    }
    pool.wait_idle();
    done = true;
    painter.join();
    auto st = pool.stats();
    if (s.live) draw(name, st, trace.size(), false);

    Row row;
    row.name = name;
    row.throughput = static_cast<double>(trace.size()) / std::chrono::duration<double>(last - start).count();
    row.p50_ms = percentile_ms(latency, 0.50);
    row.p99_ms = percentile_ms(latency, 0.99);
    for (const auto& w : st.per_worker) row.per_worker.push_back(w.completed);
    if (!s.live) std::printf("%-12s done: %zu requests\n", name, trace.size());
    return row;
}

} // namespace

int main(int argc, char** argv) {
    Settings s;
    s.live = isatty(STDOUT_FILENO) != 0;
    try {
        const demo::Options o = demo::parse_options(std::vector<std::string_view>(argv + 1, argv + argc));
        s.requests = o.requests;
        s.workers = o.workers;
        if (o.quiet) s.live = false;
    } catch (const cli::UsageError& e) {
        std::fprintf(stderr, "demo: %s (usage: %s)\n", e.what(), demo::usage);
        return 2;
    }

    const auto trace = make_trace(s);
    std::printf("taskdist %s demo: %zu requests (90%% ~1 ms, 10%% 15-25 ms, skewed users), %zu workers\n\n",
                TASKDIST_VERSION_STRING, s.requests, s.workers);

    std::vector<Row> rows;
    rows.push_back(replay<taskdist::SharedQueue>("shared-queue", trace, s));
    rows.push_back(replay<taskdist::RoundRobin>("round-robin", trace, s));
    rows.push_back(replay<taskdist::LeastBusy>("least-busy", trace, s));
    rows.push_back(replay<taskdist::Priority>("priority", trace, s));
    rows.push_back(replay<taskdist::Sticky>("sticky", trace, s));

    std::printf("\n%-13s %12s %9s %9s   %s\n", "distributor", "requests/s", "p50 ms", "p99 ms",
                "requests per worker");
    for (const Row& r : rows) {
        std::printf("%-13s %12.0f %9.2f %9.2f   ", r.name.c_str(), r.throughput, r.p50_ms, r.p99_ms);
        for (std::size_t i = 0; i < r.per_worker.size(); ++i) {
            std::printf("%s%llu", i ? " / " : "", static_cast<unsigned long long>(r.per_worker[i]));
        }
        std::printf("\n");
    }
    std::printf("\nLatency is submit to result. Work-conserving distributors (shared-queue, priority,\n"
                "least-busy, which steals from a busy worker's queue) keep short requests from queueing\n"
                "behind long ones; round-robin and sticky do not; sticky trades balance for keeping\n"
                "each user on one worker.\n");
    return 0;
}
