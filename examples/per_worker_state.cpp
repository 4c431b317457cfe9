// per_worker_state: each worker owns a connection to a flaky backend, made by
// a factory on that worker. A dropped connection is reported by throwing
// taskdist::WorkerFault: the pool rebuilds that worker's connection (calling
// the factory again, with back-off) and retries the request on another
// worker. Requests that stall past their timeout resolve TaskTimeout at once.
//
// The backend is simulated so the example runs anywhere: a connection
// answers a lookup in ~200 us, drops about one request in 200 for good, and
// stalls (until told to stop) about one in 500. Fixed seed, same run each time.
#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

/// One worker's connection: not thread-safe, and it does not need to be.
class Connection {
public:
    explicit Connection(std::size_t worker, std::uint64_t generation)
        : rng_(static_cast<std::uint32_t>(worker * 7919 + generation)), id_(generation) {}

    std::string lookup(std::uint64_t key, std::stop_token stop) {
        if (broken_) throw taskdist::WorkerFault("connection was dropped earlier");
        std::uniform_int_distribution<int> roll(0, 999);
        const int r = roll(rng_);
        if (r < 5) {
            broken_ = true;  // every later use fails too, until the pool rebuilds us
            throw taskdist::WorkerFault("connection reset by peer");
        }
        if (r < 7) {
            // A stalled backend: wait until the pool asks us to stop.
            std::mutex m;
            std::condition_variable_any cv;
            // cppcheck-suppress localMutex ; nothing is shared: the lock is only there for the wait on the stop token
            std::unique_lock lock(m);
            cv.wait(lock, stop, [] { return false; });
            return "stalled";
        }
        std::this_thread::sleep_for(200us);  // the network round trip
        ++served_;
        return "value-" + std::to_string(key * 31 % 1000);
    }
    std::uint64_t id() const { return id_; }

private:
    std::mt19937 rng_;
    std::uint64_t id_;
    std::uint64_t served_ = 0;
    bool broken_ = false;
};

const char* reason_name(taskdist::ReplaceReason r) {
    switch (r) {
        case taskdist::ReplaceReason::hung:
            return "hung";
        case taskdist::ReplaceReason::worker_fault:
            return "worker fault";
        case taskdist::ReplaceReason::factory_failed:
            return "factory failed";
    }
    return "?";
}

} // namespace

int main() {
    std::atomic<std::uint64_t> connections_made{0};
    std::atomic<int> replacements{0};

    taskdist::WorkerPool<std::uint64_t, std::string> pool(
        taskdist::per_worker(
            // The factory runs on the worker's own thread, at start and after each fault.
            [&](std::size_t worker) { return Connection(worker, connections_made.fetch_add(1)); },
            [](Connection& conn, std::uint64_t key, taskdist::TaskContext& ctx) {
                return conn.lookup(key, ctx.stop_token());
            }),
        {.workers = 4,
         .name = "fetch",
         .default_timeout = 50ms,
         .hang_grace = 200ms,
         .max_attempts = 3,
         .restart_backoff = 5ms,
         .on_replace = [&](const taskdist::ReplaceEvent& e) {
             replacements.fetch_add(1);
             std::printf("  worker %zu rebuilt (%s, %llu so far)\n", e.worker, reason_name(e.reason),
                         static_cast<unsigned long long>(e.count));
         }});

    constexpr std::uint64_t requests = 2000;
    std::vector<taskdist::TaskHandle<std::string>> handles;
    handles.reserve(requests);
    for (std::uint64_t key = 0; key < requests; ++key) handles.push_back(pool.submit(key));

    std::uint64_t ok = 0, timed_out = 0, failed = 0;
    for (auto& h : handles) {
        try {
            (void)h.get();
            ++ok;
        } catch (const taskdist::TaskTimeout&) {
            ++timed_out;
        } catch (const std::exception&) {
            ++failed;
        }
    }
    pool.wait_idle();
    const taskdist::PoolStats s = pool.stats();
    std::printf("\n%llu requests: %llu answered, %llu timed out, %llu failed after every attempt\n",
                static_cast<unsigned long long>(requests), static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(timed_out), static_cast<unsigned long long>(failed));
    std::printf("retried attempts: %llu; connections made: %llu (4 at start, the rest rebuilt)\n",
                static_cast<unsigned long long>(s.retried),
                static_cast<unsigned long long>(connections_made.load()));
    for (const auto& w : s.per_worker) {
        std::printf("  worker %zu: %5llu answered, rebuilt %llu x after a fault, %llu x after hanging\n", w.index,
                    static_cast<unsigned long long>(w.completed), static_cast<unsigned long long>(w.replaced_fault),
                    static_cast<unsigned long long>(w.replaced_hung));
    }
    // Every request is accounted for exactly once.
    return s.submitted == s.completed + s.failed + s.timed_out + s.cancelled ? 0 : 1;
}
