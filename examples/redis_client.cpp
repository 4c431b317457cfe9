// redis_client: submits a batch of jobs to a queue served by redis_worker
// processes and prints who did each. Job ids are "<batch>-<n>": run it twice
// with the same --batch and the second run queues nothing new (idempotent
// submit); the results of jobs already done come back at once.
//
//   redis_client [--host H] [--port N] [--queue NAME] [--jobs N] [--batch NAME] [--wait-s N]
#include <taskdist/redis.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "redis_client_options.hpp"

namespace {

using redis_client::Args;
using redis_client::parser;

int submit_all(const Args& a) {
    taskdist::redis::ClientOptions o;
    o.redis = {a.host, static_cast<int>(a.port), std::chrono::milliseconds(2000)};
    o.queue = a.queue;
    taskdist::redis::Client<std::string, std::string> client(o);

    std::vector<taskdist::TaskHandle<std::string>> handles;
    try {
        for (long i = 0; i < a.jobs; ++i) {
            const std::string id = a.batch + "-" + std::to_string(i);
            handles.push_back(client.submit("job " + id, {.id = id, .priority = static_cast<int>(i % 3)}));
        }
    } catch (const taskdist::redis::RedisError& e) {
        std::fprintf(stderr, "redis_client: %s\n", e.what());
        return 1;
    }
    std::printf("submitted %ld jobs to queue '%s'\n", a.jobs, a.queue.c_str());

    std::map<std::string, int> by_worker;
    int failed = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_s);
    for (auto& h : handles) {
        if (!h.wait_until(deadline)) {
            std::printf("gave up waiting after %ld s (are workers running?)\n", a.wait_s);
            return 1;
        }
        try {
            const std::string r = h.get();
            std::printf("  %s\n", r.c_str());
            ++by_worker[r.substr(r.rfind(' ') + 1)];
        } catch (const std::exception& e) {
            std::printf("  failed: %s\n", e.what());
            ++failed;
        }
    }
    std::printf("done:");
    for (const auto& [w, n] : by_worker) std::printf(" %s %d", w.c_str(), n);
    std::printf("%s\n", failed ? (" failed " + std::to_string(failed)).c_str() : "");
    return failed ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("redis_client", parser(a), argc, argv, [&] { return submit_all(a); });
}
