// A worker process for tests/test_redis.cpp: serves queue "q" on the given
// port as consumer <name>, doubling each number after <ms> of "work", and
// records in Redis, as each task starts, its value (hashes test:runs and
// test:started:<name>) and a count per worker (hash test:ran-by). Runs until
// killed; SIGTERM stops it cleanly.
//   redis_worker_proc <port> <name> <ms>
#include <taskdist/redis.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {
std::atomic<bool> terminate_requested{false};
extern "C" void on_term(int) { terminate_requested.store(true); }
} // namespace

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): a helper process; std::terminate reports to the test
    if (argc != 4) {
        std::fprintf(stderr, "usage: redis_worker_proc <port> <name> <ms>\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const std::string name = argv[2];
    const auto work = std::chrono::milliseconds(std::atoi(argv[3]));
    std::signal(SIGTERM, on_term);

    taskdist::redis::Endpoint endpoint{"127.0.0.1", port, std::chrono::milliseconds(2000)};
    taskdist::redis::WorkerOptions o;
    o.redis = endpoint;
    o.queue = "q";
    o.consumer = name;
    o.lease = std::chrono::milliseconds(500);
    o.block = std::chrono::milliseconds(50);
    o.pool.workers = 2;
    taskdist::redis::Worker<std::int64_t, std::int64_t> worker(
        [endpoint, name, work](std::int64_t x) {
            // Named apart from the worker's own connections, which tests cut
            // (CLIENT KILL) to inject network errors; retried, so that a
            // server restart does not fail the task in the middle of the books.
            auto probe = endpoint;
            probe.client_name = "test-probe:" + name;
            thread_local taskdist::redis::Connection c(probe);
            const std::string v = std::to_string(x);
            for (int tries = 0;; ++tries) {
                try {
                    // Error replies count as failures too: a server still
                    // loading its data after a restart answers -LOADING.
                    for (const auto& r : c.pipeline({{"HINCRBY", "test:runs", v, "1"},
                                                     {"HINCRBY", "test:started:" + name, v, "1"},
                                                     {"HINCRBY", "test:ran-by", name, "1"}})) {
                        if (r.is_error()) throw taskdist::redis::RedisError(std::string(r.str()));
                    }
                    break;
                } catch (const taskdist::redis::RedisError&) {
                    if (tries > 3000) throw;
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
            }
            std::this_thread::sleep_for(work);
            return 2 * x;
        },
        o);
    std::stop_source stop;
    std::jthread watcher([&] {
        while (!terminate_requested.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        stop.request_stop();
    });
    worker.run(stop.get_token());
    terminate_requested.store(true);
    return 0;
}
