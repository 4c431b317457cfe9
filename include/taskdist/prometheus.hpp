// taskdist: a pool's statistics in the Prometheus text exposition format
// (version 0.0.4), for a host service to return from its metrics endpoint.
// Needs only the standard library.
//
//   std::string body = taskdist::to_prometheus(pool.stats(), {.pool = "images"});
//   // serve `body` with Content-Type: text/plain; version=0.0.4
//
// What it writes (the prefix is "taskdist" unless set otherwise):
//   counters  <p>_tasks_{submitted,completed,failed,timed_out,cancelled,rejected,
//             retried,refused,ran_on_caller,ran_inline}_total
//   gauges    <p>_tasks_queued, <p>_tasks_running, <p>_workers,
//             <p>_producers_blocked, <p>_paused, <p>_throughput_tasks_per_second
//   per worker, labelled worker="<index>":
//   counters  <p>_worker_tasks_{completed,failed}_total, <p>_worker_busy_seconds_total,
//             <p>_worker_replacements_total{reason="hung"|"fault"|"factory"}
//   gauges    <p>_worker_tasks_queued, <p>_worker_tasks_running,
//             <p>_worker_available, <p>_worker_active
//   histograms <p>_task_wait_seconds and <p>_task_run_seconds (_bucket with
//             le from 1.024e-06 s to 17.18 s by powers of 4, and +Inf; _sum; _count)
// Every series carries pool="<name>" when PrometheusOptions::pool is set, so
// one process can expose several pools. Pure function of the snapshot:
// thread-safe.
#pragma once

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "stats.hpp"

namespace taskdist {

struct PrometheusOptions {
    /// Prefix of every metric name; must match [a-zA-Z_:][a-zA-Z0-9_:]*.
    std::string prefix = "taskdist";
    /// Value of a `pool` label on every series; empty means no such label.
    std::string pool = {};
};

namespace detail {

class PromWriter {
public:
    PromWriter(std::string& out, const PrometheusOptions& o) : out_(out), prefix_(o.prefix) {
        if (!o.pool.empty()) {
            base_labels_ = "pool=\"";
            escape_into(base_labels_, o.pool);
            base_labels_ += '"';
        }
    }

    void header(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        full_name(name);
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        full_name(name);
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    /// One sample: name{base labels, extra labels} value.
    void sample(std::string_view name, std::string_view extra_labels, double value) {
        full_name(name);
        labels(extra_labels);
        out_ += ' ';
        number(value);
        out_ += '\n';
    }
    void sample(std::string_view name, std::string_view extra_labels, std::uint64_t value) {
        full_name(name);
        labels(extra_labels);
        out_ += ' ';
        out_ += std::to_string(value);
        out_ += '\n';
    }

private:
    void full_name(std::string_view name) {
        out_ += prefix_;
        out_ += '_';
        out_ += name;
    }

    void labels(std::string_view extra) {
        if (base_labels_.empty() && extra.empty()) return;
        out_ += '{';
        out_ += base_labels_;
        if (!base_labels_.empty() && !extra.empty()) out_ += ',';
        out_ += extra;
        out_ += '}';
    }

    void number(double v) {
        char buf[64];
        // Shortest round-trip form, independent of the C locale.
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        if (ec != std::errc{}) {
            out_ += "NaN";
            return;
        }
        out_.append(buf, end);
    }

    static void escape_into(std::string& to, std::string_view v) {
        for (char c : v) {
            if (c == '\\') {
                to += "\\\\";
            } else if (c == '"') {
                to += "\\\"";
            } else if (c == '\n') {
                to += "\\n";
            } else {
                to += c;
            }
        }
    }

    std::string& out_;
    std::string prefix_;
    std::string base_labels_;
};

inline double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

} // namespace detail

/// Renders `s` in the Prometheus text format. Throws std::invalid_argument
/// if the prefix is not a valid metric name.
inline std::string to_prometheus(const PoolStats& s, const PrometheusOptions& options = {}) {
    const std::string& p = options.prefix;
    auto valid = [](char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
    };
    bool ok = !p.empty();
    for (std::size_t i = 0; ok && i < p.size(); ++i) ok = valid(p[i], i == 0);
    if (!ok) throw std::invalid_argument("taskdist::to_prometheus: prefix must match [a-zA-Z_:][a-zA-Z0-9_:]*");

    std::string out;
    out.reserve(4096 + s.per_worker.size() * 3072);
    detail::PromWriter w(out, options);

    struct Counter {
        const char* name;
        std::uint64_t value;
        const char* help;
    };
    const Counter counters[] = {
        {"tasks_submitted_total", s.submitted, "Tasks accepted."},
        {"tasks_completed_total", s.completed, "Tasks resolved with a value."},
        {"tasks_failed_total", s.failed, "Tasks resolved with the handler's exception."},
        {"tasks_timed_out_total", s.timed_out, "Tasks resolved with TaskTimeout."},
        {"tasks_cancelled_total", s.cancelled, "Tasks resolved with TaskCancelled."},
        {"tasks_rejected_total", s.rejected, "Accepted tasks dropped from a full queue (TaskRejected)."},
        {"tasks_retried_total", s.retried, "Failed attempts queued again."},
        {"tasks_refused_total", s.refused, "Submissions refused because the queue was full (never accepted)."},
        {"tasks_ran_on_caller_total", s.ran_on_caller, "Tasks run on the submitting thread (Overflow::caller_runs)."},
        {"tasks_ran_inline_total", s.ran_inline, "Tasks run inline by a worker waiting for them."},
    };
    for (const Counter& c : counters) {
        w.header(c.name, "counter", c.help);
        w.sample(c.name, "", c.value);
    }

    w.header("tasks_queued", "gauge", "Tasks accepted and not started.");
    w.sample("tasks_queued", "", s.queued);
    w.header("tasks_running", "gauge", "Tasks started and not resolved.");
    w.sample("tasks_running", "", s.running);
    w.header("workers", "gauge", "Current number of workers.");
    w.sample("workers", "", static_cast<std::uint64_t>(s.workers));
    w.header("producers_blocked", "gauge", "Producers waiting for room in a full queue.");
    w.sample("producers_blocked", "", s.blocked);
    w.header("paused", "gauge", "1 while dispatch is paused.");
    w.sample("paused", "", std::uint64_t{s.paused ? 1u : 0u});
    w.header("throughput_tasks_per_second", "gauge", "Tasks resolved over the last full second.");
    w.sample("throughput_tasks_per_second", "", s.throughput);

    auto worker_label = [](std::size_t i) { return "worker=\"" + std::to_string(i) + "\""; };

    auto per_worker = [&](const char* name, const char* type, const char* help, auto value_of) {
        w.header(name, type, help);
        for (const WorkerStats& ws : s.per_worker) w.sample(name, worker_label(ws.index), value_of(ws));
    };
    per_worker("worker_tasks_completed_total", "counter", "Tasks this worker resolved with a value.",
               [](const WorkerStats& ws) { return ws.completed; });
    per_worker("worker_tasks_failed_total", "counter", "Tasks this worker resolved with the handler's exception.",
               [](const WorkerStats& ws) { return ws.failed; });
    per_worker("worker_busy_seconds_total", "counter", "Time this worker spent running tasks.",
               [](const WorkerStats& ws) { return detail::seconds(ws.busy_time); });
    per_worker("worker_tasks_queued", "gauge", "Tasks waiting in this worker's own queue.",
               [](const WorkerStats& ws) { return ws.queued; });
    per_worker("worker_tasks_running", "gauge", "Tasks this worker is running.",
               [](const WorkerStats& ws) { return ws.running; });
    per_worker("worker_available", "gauge", "0 while the worker is down, rebuilding its state.",
               [](const WorkerStats& ws) { return std::uint64_t{ws.available ? 1u : 0u}; });
    per_worker("worker_active", "gauge", "0 for a slot the pool scaled away.",
               [](const WorkerStats& ws) { return std::uint64_t{ws.active ? 1u : 0u}; });

    w.header("worker_replacements_total", "counter", "Times this worker slot was rebuilt, by reason.");
    for (const WorkerStats& ws : s.per_worker) {
        const std::string l = worker_label(ws.index);
        w.sample("worker_replacements_total", l + ",reason=\"hung\"", ws.replaced_hung);
        w.sample("worker_replacements_total", l + ",reason=\"fault\"", ws.replaced_fault);
        w.sample("worker_replacements_total", l + ",reason=\"factory\"", ws.factory_failures);
    }

    auto histogram = [&](const char* name, const char* help, auto summary_of) {
        w.header(name, "histogram", help);
        const std::string bucket = std::string(name) + "_bucket";
        const std::string sum = std::string(name) + "_sum";
        const std::string count = std::string(name) + "_count";
        for (const WorkerStats& ws : s.per_worker) {
            const LatencySummary& l = summary_of(ws);
            const std::string wl = worker_label(ws.index);
            for (std::size_t i = 0; i < LatencySummary::histogram_bounds; ++i) {
                char le[64];
                auto [end, ec] = std::to_chars(le, le + sizeof le, detail::seconds(LatencySummary::histogram_bound(i)));
                (void)ec;  // 64 bytes hold any double
                w.sample(bucket, wl + ",le=\"" + std::string(le, end) + "\"", l.below[i]);
            }
            w.sample(bucket, wl + ",le=\"+Inf\"", l.count);
            w.sample(sum, wl, detail::seconds(l.sum));
            w.sample(count, wl, l.count);
        }
    };
    histogram("task_wait_seconds", "Time from submit to start.", [](const WorkerStats& ws) -> const LatencySummary& {
        return ws.wait;
    });
    histogram("task_run_seconds", "Time from start to finish of an attempt.",
              [](const WorkerStats& ws) -> const LatencySummary& { return ws.run; });
    return out;
}

} // namespace taskdist
