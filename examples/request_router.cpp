// request_router: web requests from many users, each needing that user's
// session. Every worker keeps an LRU cache of sessions (its own, unshared:
// per-worker state); loading a session costs a trip to the "database".
// Routing with Sticky (key = user) keeps each user on one worker, so a
// session is loaded once and a user's requests run in the order sent;
// LeastBusy balances load but scatters users, so workers keep reloading
// sessions they evicted. The same requests go through both.
//
//   request_router [--users N] [--requests N] [--workers N] [--cache N]
//
// The costs are simulated (spinning) so the example runs anywhere; the
// numbers it prints are measured.
#include <taskdist/fmt.hpp>
#include <taskdist/taskdist.hpp>

#include "request_router_options.hpp"

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <list>
#include <random>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using request_router::Args;
using request_router::parser;

void spin_for(std::chrono::nanoseconds d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
    }
}

struct Request {
    std::uint32_t user;
    std::uint32_t seq;  ///< this user's n-th request
};

struct Session {
    std::uint64_t requests_seen = 0;
};

/// One worker's sessions: a plain LRU, touched only by its worker.
class SessionCache {
public:
    explicit SessionCache(std::size_t capacity) : capacity_(capacity) {}

    /// The user's session, and whether it had to be loaded.
    std::pair<Session*, bool> get(std::uint32_t user) {
        auto it = index_.find(user);
        if (it != index_.end()) {
            order_.splice(order_.begin(), order_, it->second);
            return {&it->second->second, false};
        }
        spin_for(150us);  // the database round trip
        if (index_.size() >= capacity_) {
            index_.erase(order_.back().first);
            order_.pop_back();
        }
        order_.emplace_front(user, Session{});
        index_[user] = order_.begin();
        return {&order_.front().second, true};
    }

private:
    std::size_t capacity_;
    std::list<std::pair<std::uint32_t, Session>> order_;
    std::unordered_map<std::uint32_t, std::list<std::pair<std::uint32_t, Session>>::iterator> index_;
};

struct Outcome {
    bool loaded = false;
};

struct RunReport {
    double seconds = 0;
    std::uint64_t loads = 0;
    std::uint64_t out_of_order = 0;
    taskdist::PoolStats stats;
};

template <class Dist>
RunReport serve(const Args& a, const std::vector<Request>& requests) {
    // The last sequence number handled per user, to see whether a user's
    // requests ran in the order they were sent.
    std::vector<std::atomic<std::uint32_t>> last(static_cast<std::size_t>(a.users));
    std::atomic<std::uint64_t> out_of_order{0};

    taskdist::WorkerPool<Request, Outcome, Dist> pool(
        taskdist::per_worker([&](std::size_t) { return SessionCache(static_cast<std::size_t>(a.cache)); },
                             [&](SessionCache& cache, Request r) {
                                 auto [session, loaded] = cache.get(r.user);
                                 ++session->requests_seen;
                                 spin_for(15us);  // render the page
                                 if (last[r.user].exchange(r.seq) > r.seq) out_of_order.fetch_add(1);
                                 return Outcome{loaded};
                             }),
        {.workers = static_cast<std::size_t>(a.workers), .name = "router"});

    const auto t0 = Clock::now();
    std::vector<taskdist::TaskHandle<Outcome>> handles;
    handles.reserve(requests.size());
    for (const Request& r : requests) handles.push_back(pool.submit(r, {.key = r.user}));
    RunReport report;
    for (auto& h : handles) report.loads += h.get().loaded ? 1 : 0;
    report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    report.out_of_order = out_of_order.load();
    report.stats = pool.stats();
    return report;
}

int route(const Args& a) {
    // Users are not equally busy: a Zipf-like mix (user k sends ~1/(k+1)^0.8
    // of the traffic), fixed seed so both routers see the same requests.
    std::mt19937 rng(42);
    std::vector<double> weight(static_cast<std::size_t>(a.users));
    for (std::size_t k = 0; k < weight.size(); ++k) weight[k] = 1.0 / std::pow(static_cast<double>(k + 1), 0.8);
    std::discrete_distribution<std::uint32_t> pick(weight.begin(), weight.end());
    std::vector<std::uint32_t> next_seq(static_cast<std::size_t>(a.users), 1);
    std::vector<Request> requests;
    for (long i = 0; i < a.requests; ++i) {
        const std::uint32_t user = pick(rng);
        requests.push_back(Request{user, next_seq[user]++});
    }

    fmt::print("{} requests from {} users, {} workers, {} cached sessions per worker\n\n", a.requests, a.users,
               a.workers, a.cache);
    const RunReport sticky = serve<taskdist::Sticky>(a, requests);
    const RunReport least = serve<taskdist::LeastBusy>(a, requests);

    auto row = [&](const char* name, const RunReport& r) {
        const double hit = 100.0 * (1.0 - static_cast<double>(r.loads) / static_cast<double>(a.requests));
        fmt::print("{:<10} {:>9.0f} req/s  session hits {:5.1f}%  loads {:>6}  out-of-order {:>5}  "
                   "wait p50 {:>8}  p99 {:>8}\n",
                   name, static_cast<double>(a.requests) / r.seconds, hit, r.loads, r.out_of_order,
                   taskdist::human_duration(r.stats.wait.p50), taskdist::human_duration(r.stats.wait.p99));
    };
    row("Sticky", sticky);
    row("LeastBusy", least);
    fmt::print("\nSticky, per worker:\n{:t}\n", sticky.stats);
    fmt::print("\nLeastBusy, per worker:\n{:t}\n", least.stats);

    // Sticky runs each user's requests on one worker, in order, always.
    return sticky.out_of_order == 0 && sticky.stats.completed == static_cast<std::uint64_t>(a.requests) &&
                   least.stats.completed == static_cast<std::uint64_t>(a.requests)
               ? 0
               : 1;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("request_router", parser(a), argc, argv, [&] { return route(a); });
}
