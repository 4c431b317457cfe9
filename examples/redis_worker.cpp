// redis_worker: one worker process of a queue shared through Redis. Start as
// many as you like, on any machines that reach the server; each takes tasks
// while it has free threads, prints what it takes and completes, and when one
// dies mid-task its tasks are taken over by the others after the lease.
//
//   redis_worker [--host H] [--port N] [--queue NAME] [--name NAME] [--threads N] [--work-ms N] [--lease-ms N]
//
// Tasks are strings (a job name); the result says who did it. Ctrl-C stops
// cleanly: tasks taken but not started are handed back at once.
#include <taskdist/redis.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "redis_worker_options.hpp"

namespace {

std::atomic<bool> interrupted{false};
extern "C" void on_signal(int) { interrupted.store(true); }

using redis_worker::Args;
using redis_worker::parser;

int serve(const Args& a) {
    taskdist::redis::WorkerOptions o;
    o.redis = {a.host, static_cast<int>(a.port), std::chrono::milliseconds(2000)};
    o.queue = a.queue;
    o.consumer = a.name;
    o.lease = std::chrono::milliseconds(a.lease_ms);
    o.pool.workers = static_cast<std::size_t>(a.threads);
    o.log = [](const std::string& line) {
        std::printf("  %s\n", line.c_str());
        std::fflush(stdout);
    };
    const auto work = std::chrono::milliseconds(a.work_ms);
    std::string me;  // the worker's name, known once it exists

    taskdist::redis::Worker<std::string, std::string> worker(
        [work, &me](const std::string& job, taskdist::TaskContext& ctx) {
            // The "work": wait, but stop early when asked (a timeout).
            for (auto until = std::chrono::steady_clock::now() + work; std::chrono::steady_clock::now() < until;) {
                if (ctx.stop_requested()) throw std::runtime_error("stopped");
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            return job + " done by " + me;
        },
        o);
    me = worker.consumer();
    std::printf("worker %s serving queue '%s' on %s:%ld with %ld threads\n", worker.consumer().c_str(),
                a.queue.c_str(), a.host.c_str(), a.port, a.threads);
    std::fflush(stdout);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::stop_source stop;
    std::jthread watcher([&] {
        while (!interrupted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        stop.request_stop();
    });
    worker.run(stop.get_token());
    interrupted.store(true);
    const auto c = worker.counters();
    std::printf("stopped: took %llu (%llu taken over from dead workers), completed %llu, handed back %llu, "
                "dead-lettered %llu\n",
                static_cast<unsigned long long>(c.taken), static_cast<unsigned long long>(c.reclaimed),
                static_cast<unsigned long long>(c.completed), static_cast<unsigned long long>(c.handed_back),
                static_cast<unsigned long long>(c.dead_lettered));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("redis_worker", parser(a), argc, argv, [&] { return serve(a); });
}
