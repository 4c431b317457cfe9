// The statistics on their way out: the fmt formatters, the Prometheus text
// and, when the example is built, a scrape of it over HTTP.
#include "support.hpp"
#include "prometheus_parse.hpp"

#include <taskdist/prometheus.hpp>
#include <taskdist/taskdist.hpp>

#if TASKDIST_TEST_FMT
#include <taskdist/fmt.hpp>
#endif

#if defined(TASKDIST_METRICS_SERVER)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;

// A pool with a known history: 2 workers, round-robin (so the split is
// exact), 12 tasks of which ids 3 and 7 throw and every task works 200 us.
taskdist::PoolStats known_stats() {
    taskdist::WorkerPool<int, int, taskdist::RoundRobin> pool(
        [](int id) {
            spin_for(200us);
            if (id == 3 || id == 7) throw std::runtime_error("boom");
            return id;
        },
        {.workers = 2});
    std::vector<taskdist::TaskHandle<int>> handles;
    for (int id = 0; id < 12; ++id) handles.push_back(pool.submit(id));
    for (auto& h : handles) (void)h.wait_for(patience);
    pool.wait_idle();
    return pool.stats();
}

TEST_CASE("LatencySummary's histogram is cumulative, exact at its bounds and agrees with count and sum") {
    const taskdist::PoolStats s = known_stats();
    for (const auto& w : s.per_worker) {
        CAPTURE(w.index);
        const taskdist::LatencySummary& run = w.run;
        CHECK(run.count == 6);
        for (std::size_t i = 1; i < run.below.size(); ++i) CHECK(run.below[i] >= run.below[i - 1]);
        CHECK(run.below.back() <= run.count);
        // Every task spun 200 us: none below 65.5 us (bound 3), and the sum is at least 6 x 200 us.
        CHECK(run.below[3] == 0);
        CHECK(run.sum >= 6 * 200us);
        CHECK(run.sum >= run.max);
        CHECK(run.mean == run.sum / 6);
    }
    CHECK(taskdist::LatencySummary::histogram_bound(0) == 1024ns);
    CHECK(taskdist::LatencySummary::histogram_bound(12) == std::chrono::nanoseconds(std::int64_t{1} << 34));
}

TEST_CASE("to_prometheus writes valid exposition text whose values are the snapshot's") {
    const taskdist::PoolStats s = known_stats();
    const std::string text = taskdist::to_prometheus(s);
    const PromParse p = parse_prometheus(text);
    INFO(text);
    REQUIRE(p.error.empty());

    CHECK(p.types.at("taskdist_tasks_submitted_total") == "counter");
    CHECK(p.types.at("taskdist_tasks_queued") == "gauge");
    CHECK(p.types.at("taskdist_task_run_seconds") == "histogram");
    CHECK(p.value("taskdist_tasks_submitted_total") == 12.0);
    CHECK(p.value("taskdist_tasks_completed_total") == 10.0);
    CHECK(p.value("taskdist_tasks_failed_total") == 2.0);
    CHECK(p.value("taskdist_tasks_queued") == 0.0);
    CHECK(p.value("taskdist_workers") == 2.0);
    for (const char* w : {"0", "1"}) {
        CAPTURE(w);
        // Round-robin: ids 3 and 7 both land on worker 1.
        CHECK(p.value("taskdist_worker_tasks_completed_total", {{"worker", w}}) == (w[0] == '0' ? 6.0 : 4.0));
        CHECK(p.value("taskdist_worker_tasks_failed_total", {{"worker", w}}) == (w[0] == '0' ? 0.0 : 2.0));
        CHECK(p.value("taskdist_worker_replacements_total", {{"worker", w}, {"reason", "hung"}}) == 0.0);
        CHECK(p.value("taskdist_task_run_seconds_count", {{"worker", w}}) == 6.0);
        CHECK(p.value("taskdist_task_run_seconds_bucket", {{"worker", w}, {"le", "+Inf"}}) == 6.0);
        const std::optional<double> sum = p.value("taskdist_task_run_seconds_sum", {{"worker", w}});
        REQUIRE(sum.has_value());
        CHECK(*sum >= 6 * 200e-6);

        // The buckets of one series: le ascending as written, counts never falling.
        std::vector<std::pair<double, double>> buckets;
        for (const auto& smp : p.samples) {
            if (smp.name != "taskdist_task_run_seconds_bucket" || smp.labels.at("worker") != w) continue;
            const std::string& le = smp.labels.at("le");
            buckets.emplace_back(le == "+Inf" ? 1e308 : std::stod(le), smp.value);
        }
        REQUIRE(buckets.size() == taskdist::LatencySummary::histogram_bounds + 1);
        for (std::size_t i = 1; i < buckets.size(); ++i) {
            CHECK(buckets[i].first > buckets[i - 1].first);
            CHECK(buckets[i].second >= buckets[i - 1].second);
        }
    }
}

TEST_CASE("to_prometheus labels every series with the pool, escaped, and honours the prefix") {
    taskdist::PoolStats s;
    s.workers = 1;
    s.per_worker.resize(1);
    const std::string text = taskdist::to_prometheus(s, {.prefix = "app_jobs", .pool = "a \"quoted\" \\ pool\nname"});
    const PromParse p = parse_prometheus(text);
    INFO(text);
    REQUIRE(p.error.empty());
    for (const auto& smp : p.samples) {
        CAPTURE(smp.name);
        CHECK(smp.name.rfind("app_jobs_", 0) == 0);
        CHECK(smp.labels.at("pool") == "a \"quoted\" \\ pool\nname");
    }
    CHECK(p.value("app_jobs_tasks_submitted_total") == 0.0);
}

TEST_CASE("to_prometheus rejects a prefix that is not a metric name") {
    taskdist::PoolStats s;
    for (const char* bad : {"", "9lives", "has space", "dash-ed"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(taskdist::to_prometheus(s, {.prefix = bad}), std::invalid_argument);
    }
}

#if TASKDIST_TEST_FMT
TEST_CASE("fmt: PoolStats in one line and as a table, WorkerStats and LatencySummary in one line") {
    const taskdist::PoolStats s = known_stats();
    const std::string line = fmt::format("{}", s);
    INFO(line);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find("workers 2") != std::string::npos);
    CHECK(line.find("submitted 12 completed 10 failed 2") != std::string::npos);

    const std::string table = fmt::format("{:t}", s);
    INFO(table);
    const auto lines = std::count(table.begin(), table.end(), '\n') + 1;
    CHECK(lines == 4);  // header, two workers, total
    CHECK(table.find("worker") == table.find_first_not_of(' '));
    CHECK(table.find("total") != std::string::npos);

    const std::string w1 = fmt::format("{}", s.per_worker[1]);
    INFO(w1);
    CHECK(w1.find("worker 1: completed 4 failed 2") == 0);

    const std::string run = fmt::format("{}", s.run);
    CHECK(run.find("n=12 ") == 0);
    CHECK(fmt::format("{}", taskdist::LatencySummary{}) == "n=0");
}

TEST_CASE("fmt: durations print with three significant digits and a unit; bad specs are refused") {
    CHECK(taskdist::human_duration(850ns) == "850ns");
    CHECK(taskdist::human_duration(12345ns) == "12.3us");
    CHECK(taskdist::human_duration(1470us) == "1.47ms");
    CHECK(taskdist::human_duration(2100ms) == "2.10s");
    CHECK(taskdist::human_duration(0ns) == "0ns");
    taskdist::PoolStats s;
    CHECK_THROWS_AS(fmt::format(fmt::runtime("{:x}"), s), fmt::format_error);
    CHECK_THROWS_AS(fmt::format(fmt::runtime("{:t}"), s.run), fmt::format_error);
}
#endif

#if defined(TASKDIST_METRICS_SERVER)
// Reads the whole HTTP response from a socket connected to 127.0.0.1:port.
std::string http_get(int port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    std::string response;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return response;
}

TEST_CASE("the metrics_server example serves parseable Prometheus text over HTTP on 127.0.0.1") {
    // The example prints "listening on 127.0.0.1:<port>" once it accepts,
    // runs its demo work, and exits after the number of requests asked for.
    // NOLINTNEXTLINE(cert-env33-c): the command is the example CMake built, with fixed arguments
    FILE* child = ::popen(TASKDIST_METRICS_SERVER " --port 0 --requests 2 --tasks 200", "r");
    REQUIRE(child != nullptr);
    char first[256] = {};
    REQUIRE(std::fgets(first, sizeof first, child) != nullptr);
    const std::string banner(first);
    INFO(banner);
    const auto colon = banner.rfind(':');
    REQUIRE(colon != std::string::npos);
    const int port = std::stoi(banner.substr(colon + 1));

    const std::string missing = http_get(port, "/nothing-here");
    CHECK(missing.rfind("HTTP/1.1 404", 0) == 0);

    const std::string response = http_get(port, "/metrics");
    const auto body_at = response.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    const std::string head = response.substr(0, body_at);
    INFO(head);
    CHECK(head.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    const PromParse p = parse_prometheus(response.substr(body_at + 4));
    INFO(p.error);
    REQUIRE(p.error.empty());
    // The example finishes its 200 tasks before it starts serving.
    CHECK(p.value("taskdist_tasks_submitted_total", {{"pool", "example"}}) == 200.0);
    CHECK(p.value("taskdist_tasks_completed_total", {{"pool", "example"}}) == 200.0);
    CHECK(::pclose(child) == 0);
}
#endif

} // namespace
