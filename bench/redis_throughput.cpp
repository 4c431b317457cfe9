// R1: tasks per second through Redis on loopback, taskdist's whole path
// (Client::submit_many -> Worker -> result on the client's handle) against
// the raw hiredis floor measured in the same run: one thread XADDs
// (pipelined), another XREADGROUPs and XACKs + XDELs (pipelined), as a
// hand-written queue on the same streams would.
//
// Starts its own redis-server (no persistence) on a free port.
// TASKDIST_BENCH_SCALE scales the task count like the other workloads.
#include "../tests/redis_support.hpp"
#include "common.hpp"

#include <taskdist/redis.hpp>

#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using bench::Clock;
namespace rd = taskdist::redis;

std::size_t tasks() { return std::max<std::size_t>(200, static_cast<std::size_t>(50'000 * bench::scale())); }

test_support::RedisServer& server() {
    static test_support::RedisServer s;
    return s;
}

// With TASKDIST_BENCH_COMMANDSTATS set, each run prints the server's time
// per task by command (INFO commandstats) and its main thread's CPU per task
// (INFO cpu): Redis is single-threaded, so these say what limits the rate.
bool commandstats_wanted() { return std::getenv("TASKDIST_BENCH_COMMANDSTATS") != nullptr; }

// "name<sep>number" in an INFO text ("name:1.5" lines, "name=3," within a commandstats line).
double info_field(std::string_view info, std::string_view name, char sep = ':') {
    const std::size_t at = info.find(std::string(name) + sep);
    return at == std::string_view::npos ? 0.0 : std::atof(std::string(info.substr(at + name.size() + 1, 32)).c_str());
}

// This process's CPU (every thread: the raw loop's, or taskdist's client and worker).
double own_cpu() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double server_cpu() {
    rd::Connection c(server().endpoint());
    const rd::Reply r = c.command({"INFO", "cpu"});
    return info_field(r.str(), "used_cpu_sys_main_thread") + info_field(r.str(), "used_cpu_user_main_thread");
}

void reset_commandstats() {
    if (!commandstats_wanted()) return;
    rd::Connection c(server().endpoint());
    c.command({"CONFIG", "RESETSTAT"});
}

void print_commandstats(const char* path, std::size_t n, double cpu_before, double own_before) {
    if (!commandstats_wanted()) return;
    const double own = own_cpu() - own_before;
    const double cpu = server_cpu() - cpu_before;
    rd::Connection c(server().endpoint());
    const rd::Reply r = c.command({"INFO", "commandstats"});
    std::string_view info = r.str();
    std::printf("%s: CPU per task: server main thread %.2f us, this process %.2f us; commands, us per task (calls per task):\n",
                path, cpu * 1e6 / static_cast<double>(n), own * 1e6 / static_cast<double>(n));
    double total = 0;
    for (std::size_t at = info.find("cmdstat_"); at != std::string_view::npos; at = info.find("cmdstat_", at + 1)) {
        const std::string_view line = info.substr(at, info.find('\n', at) - at);
        const std::string name(line.substr(8, line.find(':') - 8));
        if (name.starts_with("config") || name == "info") continue;
        const double calls = info_field(line, "calls", '='), usec = info_field(line, "usec", '=');
        total += usec;
        std::printf("  %-14s %7.3f us (%.4f)\n", name.c_str(), usec / static_cast<double>(n), calls / static_cast<double>(n));
    }
    std::printf("  %-14s %7.3f us\n", "all", total / static_cast<double>(n));
}

void record(benchmark::State& state, std::size_t n, double seconds) {
    state.SetIterationTime(seconds);
    state.SetItemsProcessed(static_cast<std::int64_t>(n) * state.iterations());
    state.counters["tasks_per_second"] = static_cast<double>(n) / seconds;
}

void raw_streams(benchmark::State& state) {
    const std::size_t n = tasks();
    rd::Connection admin(server().endpoint());
    for (auto _ : state) {
        const std::string stream = "raw:" + std::to_string(Clock::now().time_since_epoch().count());
        admin.command({"XGROUP", "CREATE", stream, "g", "0", "MKSTREAM"});
        const std::string body(8, 'x');
        reset_commandstats();
        const double cpu0 = commandstats_wanted() ? server_cpu() : 0.0;
        const double own0 = own_cpu();
        const auto t0 = Clock::now();
        std::jthread consumer([&] {
            rd::Connection c(server().endpoint());
            std::size_t done = 0;
            while (done < n) {
                rd::Reply r = c.command({"XREADGROUP", "GROUP", "g", "c", "COUNT", "256", "BLOCK", "100", "STREAMS", stream, ">"});
                if (r.is_nil()) continue;
                const rd::Reply::View entries = r[0][1];
                std::vector<std::string> ids;
                for (std::size_t i = 0; i < entries.size(); ++i) ids.emplace_back(entries[i][0].str());
                std::vector<std::string_view> ack{"XACK", stream, "g"}, del{"XDEL", stream};
                for (const auto& id : ids) {
                    ack.push_back(id);
                    del.push_back(id);
                }
                c.pipeline({ack, del});
                done += ids.size();
            }
        });
        rd::Connection p(server().endpoint());
        for (std::size_t start = 0; start < n; start += 256) {
            std::vector<std::vector<std::string_view>> cmds;
            for (std::size_t i = start; i < std::min(n, start + 256); ++i) cmds.push_back({"XADD", stream, "*", "body", body});
            p.pipeline(cmds);
        }
        consumer.join();
        record(state, n, std::chrono::duration<double>(Clock::now() - t0).count());
        print_commandstats("raw", n, cpu0, own0);
        admin.command({"DEL", stream});
    }
}

void taskdist_redis(benchmark::State& state) {
    const std::size_t n = tasks();
    int round = 0;
    for (auto _ : state) {
        const std::string queue = "bench" + std::to_string(round++);
        rd::WorkerOptions wo;
        wo.redis = server().endpoint();
        wo.queue = queue;
        wo.slots = 256;
        wo.pool.workers = 2;
        wo.pool.measure_timing = false;
        rd::Worker<std::int64_t, std::int64_t> worker([](std::int64_t x) { return x + 1; }, wo);
        std::jthread serving([&](std::stop_token st) { worker.run(st); });
        rd::ClientOptions co;
        co.redis = server().endpoint();
        co.queue = queue;
        rd::Client<std::int64_t, std::int64_t> client(co);
        std::vector<std::int64_t> values(n);
        for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<std::int64_t>(i);

        reset_commandstats();
        const double cpu0 = commandstats_wanted() ? server_cpu() : 0.0;
        const double own0 = own_cpu();
        const auto t0 = Clock::now();
        auto handles = client.submit_many(values);
        std::int64_t sum = 0;
        for (auto& h : handles) sum += h.get();
        record(state, n, std::chrono::duration<double>(Clock::now() - t0).count());
        print_commandstats("taskdist", n, cpu0, own0);
        benchmark::DoNotOptimize(sum);
    }
}

} // namespace

BENCHMARK(raw_streams)->Name("R1/raw_hiredis_streams/1")->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(taskdist_redis)->Name("R1/taskdist_redis/1")->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
