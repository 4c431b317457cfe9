// taskdist::redis::Client: submits tasks to a queue that worker processes on
// any machine serve, and returns the same TaskHandle<Result> as a local pool.
//
//   taskdist::redis::Client<std::string, std::size_t> client({.queue = "words"});
//   auto h = client.submit("hello", {.id = "greeting-1", .priority = 2});
//   std::size_t n = h.get();   // RemoteTaskError if the handler threw there
//
// Delivery: a task runs at least once (again if its worker dies holding it);
// its result reaches the client exactly once: the first result wins, later
// ones are dropped on the server. Submitting an id that was queued before
// (within result_ttl) does not queue it again: the new handle resolves with
// that task's result, at once if it is already known.
//
// Thread-safety: submit() may be called from any thread; one background
// thread reads replies. cancel() on a handle resolves it TaskCancelled
// locally; the remote task may still run, and its result is then dropped.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../task_handle.hpp"
#include "codec.hpp"
#include "connection.hpp"
#include "protocol.hpp"

namespace taskdist::redis {

struct ClientOptions {
    Endpoint redis{};
    /// The queue's name; workers serving the same name take its tasks.
    std::string queue = "default";
    /// Priority levels (streams) of the queue: must match the workers'.
    int priorities = 3;
    /// Names this client's reply list; empty: host, process and 64 random
    /// bits. Two live clients must not share one.
    std::string client_id = {};
    /// How long task ids (idempotency) and delivered results are remembered.
    std::chrono::milliseconds result_ttl = std::chrono::hours(1);
    /// Longest blocking read of the reply list (the reader's stop latency).
    std::chrono::milliseconds block{100};
};

/// Settings of one remote submit.
struct RemoteOptions {
    /// The idempotency key; empty: a fresh unique id.
    std::string id = {};
    /// 0 .. priorities-1; higher levels are served first. -1: the middle
    /// level. Anything else throws std::invalid_argument at submit.
    int priority = -1;
    /// Run-time limit on the worker (0: none, at most 366 days); the handle
    /// then resolves TaskTimeout.
    std::chrono::milliseconds timeout{0};
};

namespace detail {

/// 64 random bits in hex: what keeps two clients (or two runs of one, with a
/// fixed client_id) from taking each other's replies or ids.
inline std::string nonce() {
    std::random_device rd;
    const std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd();
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

inline std::string default_client_id() { return process_name() + "-" + nonce(); }

/// A done record is "<status>\n<body>".
inline std::pair<Status, std::string_view> split_done(std::string_view v) {
    const std::size_t nl = v.find('\n');
    const auto st = parse_status(v.substr(0, nl));
    if (!st || nl == std::string_view::npos) return {Status::error, "taskdist::redis: unreadable result record"};
    return {*st, v.substr(nl + 1)};
}

} // namespace detail

template <class Task, class Result>
    requires Encodable<Task> && (std::is_void_v<Result> || Encodable<Result>)
class Client {
public:
    explicit Client(ClientOptions options = {}) : core_(std::make_shared<Core>(std::move(options))) {
        core_->start();
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    /// Stops the reply reader; handles still waiting resolve RedisError.
    ~Client() { core_->stop(); }

    /// Queues the task. Throws RedisError if Redis cannot be reached (the
    /// task was then most likely not queued: resubmitting with the same id is
    /// safe) or refused it (out of memory: not queued),
    /// std::invalid_argument for a priority out of range.
    TaskHandle<Result> submit(const Task& task, const RemoteOptions& options = {}) { return core_->submit(task, options); }

    /// Queues many tasks, 256 to a round trip; each gets a fresh id and
    /// `options`' priority and timeout. Does not throw RedisError: the
    /// handles of tasks that could not be queued resolve with it (the others
    /// stay queued, and their handles get their results; once the server
    /// refuses a task, or cannot be reached, later batches are not tried).
    std::vector<TaskHandle<Result>> submit_many(const std::vector<Task>& tasks, const RemoteOptions& options = {}) {
        return core_->submit_many(tasks, options);
    }

    /// Tasks submitted and not resolved yet.
    std::size_t pending() const { return core_->pending(); }
    /// Result records read from this client's reply list so far: one per
    /// task queued (duplicates share one), never more.
    std::uint64_t replies() const noexcept { return core_->replies.load(std::memory_order_relaxed); }
    const std::string& client_id() const noexcept { return core_->id; }

private:
    using State = taskdist::detail::TaskState<Result>;
    using Ref = taskdist::detail::StateRef<State>;

    struct Core final : taskdist::detail::PoolLink, std::enable_shared_from_this<Core> {
        explicit Core(ClientOptions o)
            : options(std::move(o)),
              id(options.client_id.empty() ? detail::default_client_id() : options.client_id),
              keys(options.queue),
              instance(detail::nonce()),
              reply_key(keys.reply(id)),
              submit_conn(named(options.redis, id)),
              read_conn(named(options.redis, id)) {
            if (options.priorities < 1) throw std::invalid_argument("taskdist::redis::Client: priorities must be >= 1");
            for (int p = 0; p < options.priorities; ++p) streams.push_back(keys.stream(p));
            if (options.result_ttl.count() <= 0) throw std::invalid_argument("taskdist::redis::Client: result_ttl must be positive");
            // A blocking read must end well before hiredis' own timeout (see Endpoint::timeout).
            if (options.block.count() <= 0 || options.block > options.redis.timeout / 2) {
                throw std::invalid_argument("taskdist::redis::Client: block must be positive and at most half the connection timeout");
            }
        }

        static Endpoint named(Endpoint e, const std::string& client_id) {
            if (e.client_name.empty()) e.client_name = "taskdist-client:" + client_id;
            return e;
        }

        void start() {
            reader = std::jthread([this](std::stop_token st) { read_replies(st); });
        }

        void stop() {
            reader.request_stop();
            if (reader.joinable()) reader.join();
            std::lock_guard lock(map_mutex);
            const auto closed = [](const std::string& task_id) {
                return std::make_exception_ptr(
                    RedisError("taskdist::redis: the client closed before task '" + task_id + "' had a result"));
            };
            for (auto& [n, r] : generated) resolve_error(r, closed(instance + ":" + std::to_string(n)));
            generated.clear();
            for (auto& [task_id, refs] : waiting) {
                for (Ref& r : refs) resolve_error(r, closed(task_id));
            }
            waiting.clear();
        }

        int checked_priority(const RemoteOptions& o) const {
            const int priority = o.priority == -1 ? options.priorities / 2 : o.priority;
            if (priority < 0 || priority >= options.priorities) {
                throw std::invalid_argument("taskdist::redis::Client: priority " + std::to_string(o.priority) +
                                            " is outside 0.." + std::to_string(options.priorities - 1) +
                                            " (or -1: the middle level)");
            }
            if (o.timeout.count() < 0) throw std::invalid_argument("taskdist::redis::Client: timeout must not be negative");
            // Workers refuse a longer one as malformed (and dead-letter the
            // task): say so here, before anything is queued.
            if (o.timeout.count() > max_timeout_ms) {
                throw std::invalid_argument("taskdist::redis::Client: timeout " + std::to_string(o.timeout.count()) +
                                            " ms is over the most a worker takes (366 days)");
            }
            return priority;
        }

        /// One task's part of a submit, its strings owned here.
        struct Pending {
            std::string task_id;
            std::string envelope;             ///< the entry's one field
            std::string idem, done, waiters;  ///< for a caller's id only
            int priority = 0;
            bool keep = false;  ///< the caller gave the id
            State* state = nullptr;
        };

        /// Makes the state and handle and registers them before the task is
        /// queued, so that a fast reply finds them.
        Pending prepare(std::string_view body, const RemoteOptions& o, int priority, TaskHandle<Result>& handle) {
            Pending p;
            p.keep = !o.id.empty();
            const std::uint64_t n = next.fetch_add(1);
            p.task_id = p.keep ? o.id : instance + ":" + std::to_string(n);
            p.priority = priority;
            if (p.keep) {
                p.idem = keys.idempotency(p.task_id);
                p.done = keys.done(p.task_id);
                p.waiters = keys.waiters(p.task_id);
            }
            p.envelope = pack_envelope(p.task_id, reply_key, o.timeout.count(), p.keep, body);
            p.state = new State(2);
            p.state->pool_ = this;
            handle = taskdist::detail::make_handle<Result>(p.state);
            std::lock_guard lock(map_mutex);
            if (p.keep) {
                waiting[p.task_id].emplace_back(p.state);
            } else {
                generated.emplace(n, Ref(p.state));
            }
            return p;
        }

        /// Queues a batch in one round trip; a duplicate whose result is
        /// known resolves at once. On a Redis error the batch's handles
        /// resolve with it, and it is thrown.
        /// Also throws RedisError when the server refused some of the batch
        /// (out of memory, say): only those handles resolve with it then, as
        /// not queued; the rest were queued and get their results.
        void queue(const std::vector<Pending>& batch) {
            std::vector<std::pair<std::size_t, std::string>> refused;
            try {
                if (std::any_of(batch.begin(), batch.end(), [](const Pending& p) { return p.keep; })) {
                    queue_scripted(batch);
                } else {
                    refused = queue_plain(batch);
                }
            } catch (const RedisError& e) {
                // The tasks may have been queued before the connection failed.
                const auto error = std::make_exception_ptr(RedisError(
                    std::string(e.what()) + " (the task may have been queued: submit it again with the same id to be sure)"));
                for (const Pending& p : batch) forget(p.task_id, p.state, error);
                throw;
            }
            if (refused.empty()) return;
            for (const auto& [i, why] : refused) {
                forget(batch[i].task_id, batch[i].state,
                       std::make_exception_ptr(RedisError("taskdist::redis: not queued: the server refused it: " + why)));
            }
            throw RedisError("taskdist::redis: the server refused " + std::to_string(refused.size()) + " of " +
                             std::to_string(batch.size()) + " tasks (not queued): " + refused.front().second);
        }

        /// Generated ids are never seen twice: nothing to look up, so the
        /// entries are XADDed as they are (pipelined), the way the submit
        /// script writes them; no script call costs the server per task.
        /// Returns the entries the server refused, by index, with its error:
        /// each XADD of the pipeline stands alone, so the others are queued.
        std::vector<std::pair<std::size_t, std::string>> queue_plain(const std::vector<Pending>& batch) {
            std::vector<std::pair<std::size_t, std::string>> refused;
            std::lock_guard lock(submit_mutex);
            submit_buffer.clear();
            for (const Pending& p : batch) {
                const std::string_view stream = streams[static_cast<std::size_t>(p.priority)];
                Connection::append_command(submit_buffer,
                                           std::array<std::string_view, 5>{"XADD", stream, "*", envelope_field, p.envelope});
            }
            const std::vector<Reply> replies = submit_conn.send(submit_buffer, batch.size());
            for (std::size_t i = 0; i < replies.size(); ++i) {
                if (replies[i].is_error()) refused.emplace_back(i, "XADD: " + std::string(replies[i].str()));
            }
            return refused;
        }

        void queue_scripted(const std::vector<Pending>& batch) {
            const std::string n = std::to_string(batch.size() * 4);
            const std::string ttl = std::to_string(options.result_ttl.count());
            std::vector<std::string_view> args{n};
            for (std::size_t i = 0; i < batch.size(); ++i) {
                args.push_back(streams[static_cast<std::size_t>(batch[i].priority)]);
                args.push_back(batch[i].idem);
                args.push_back(batch[i].done);
                args.push_back(batch[i].waiters);
            }
            args.push_back(ttl);
            args.push_back(reply_key);
            for (const Pending& p : batch) {
                args.push_back(p.task_id);
                args.push_back(p.envelope);
                args.push_back(p.keep ? "1" : "0");
            }
            Reply r;
            {
                std::lock_guard lock(submit_mutex);
                r = scripts::submit().run(submit_conn, args);
            }
            if (r.size() != batch.size() * 3) throw RedisError("taskdist::redis: unexpected reply to the submit script");
            for (std::size_t i = 0; i < batch.size(); ++i) {
                const ReplyView done = r[3 * i + 2];
                if (r[3 * i].integer() == 0 && !done.is_nil()) {
                    const auto [status, payload] = detail::split_done(done.str());
                    deliver(batch[i].task_id, status, payload);
                }
            }
        }

        TaskHandle<Result> submit(const Task& task, const RemoteOptions& o) {
            const int priority = checked_priority(o);
            TaskHandle<Result> handle;
            queue({prepare(Codec<Task>::encode(task), o, priority, handle)});
            return handle;
        }

        std::vector<TaskHandle<Result>> submit_many(const std::vector<Task>& tasks, const RemoteOptions& o) {
            if (!o.id.empty()) {
                throw std::invalid_argument(
                    "taskdist::redis::Client::submit_many: each task gets its own id; leave RemoteOptions::id empty");
            }
            const int priority = checked_priority(o);
            // Encoded first: a codec that throws does so before anything is queued.
            std::vector<std::string> bodies;
            bodies.reserve(tasks.size());
            for (const Task& t : tasks) bodies.push_back(Codec<Task>::encode(t));
            std::vector<TaskHandle<Result>> handles(tasks.size());
            std::exception_ptr failed;
            for (std::size_t start = 0; start < tasks.size(); start += 256) {
                std::vector<Pending> batch;
                for (std::size_t i = start; i < std::min(tasks.size(), start + 256); ++i) {
                    batch.push_back(prepare(bodies[i], o, priority, handles[i]));
                }
                if (failed) {
                    for (const Pending& p : batch) forget(p.task_id, p.state, failed);
                    continue;
                }
                try {
                    queue(batch);
                } catch (const RedisError&) {
                    // Later batches are not tried: a server out of memory or
                    // out of reach would refuse them too.
                    failed = std::make_exception_ptr(RedisError("taskdist::redis: not queued: an earlier batch failed"));
                }
            }
            return handles;
        }

        std::size_t pending() const {
            std::lock_guard lock(map_mutex);
            std::size_t n = generated.size();
            for (const auto& [k, v] : waiting) n += v.size();
            return n;
        }

        // PoolLink: a handle cancelled here stays in the map until its result
        // (dropped then) or the client's end.
        void on_cancel(taskdist::detail::TaskStateBase&, void*) noexcept override {}
        std::shared_ptr<void> keep_alive() noexcept override { return this->shared_from_this(); }
        void after_resolution() noexcept override {}
        void run_inline(taskdist::detail::TaskStateBase&) noexcept override {}

        /// The number in a generated id ("<instance>:<n>"), if `task_id` is one of this client's.
        std::optional<std::uint64_t> generated_number(std::string_view task_id) const {
            if (task_id.size() <= instance.size() + 1 || !task_id.starts_with(instance) || task_id[instance.size()] != ':') {
                return std::nullopt;
            }
            std::uint64_t n = 0;
            const char* end = task_id.data() + task_id.size();
            auto [at, ec] = std::from_chars(task_id.data() + instance.size() + 1, end, n);
            if (ec != std::errc{} || at != end) return std::nullopt;
            return n;
        }

        /// Takes the handles waiting for `task_id` (none: not ours, or
        /// resolved already), under map_mutex.
        void take_waiting(std::string_view task_id, std::vector<Ref>& out) {
            if (const auto n = generated_number(task_id)) {
                if (auto it = generated.find(*n); it != generated.end()) {
                    out.push_back(std::move(it->second));
                    generated.erase(it);
                    return;
                }
            }
            if (waiting.empty()) return;
            auto it = waiting.find(std::string(task_id));
            if (it == waiting.end()) return;
            for (Ref& r : it->second) out.push_back(std::move(r));
            waiting.erase(it);
        }

        void forget(const std::string& task_id, State* state, std::exception_ptr error) {
            std::lock_guard lock(map_mutex);
            if (const auto n = generated_number(task_id)) {
                if (auto g = generated.find(*n); g != generated.end() && g->second.get() == state) {
                    resolve_error(g->second, std::move(error));
                    generated.erase(g);
                    return;
                }
            }
            auto it = waiting.find(task_id);
            if (it == waiting.end()) return;
            auto& refs = it->second;
            for (auto r = refs.begin(); r != refs.end(); ++r) {
                if (r->get() == state) {
                    resolve_error(*r, error);
                    refs.erase(r);
                    break;
                }
            }
            if (refs.empty()) waiting.erase(it);
        }

        static void resolve_error(Ref& ref, std::exception_ptr e) noexcept {
            (void)ref.get()->try_resolve_error(std::move(e));  // false: cancelled already
            ref.release();
        }

        static void resolve(Ref& ref, Status status, std::string_view body) noexcept {
            std::exception_ptr error;
            std::optional<std::conditional_t<std::is_void_v<Result>, char, Result>> value;
            try {
                switch (status) {
                    case Status::ok:
                        if constexpr (std::is_void_v<Result>) {
                            value.emplace('\0');
                        } else {
                            value.emplace(Codec<Result>::decode(body));
                        }
                        break;
                    case Status::error:
                        error = std::make_exception_ptr(RemoteTaskError(std::string(body)));
                        break;
                    case Status::timeout:
                        error = std::make_exception_ptr(TaskTimeout{});
                        break;
                    case Status::dead:
                        error = std::make_exception_ptr(DeadLettered(std::string(body)));
                        break;
                }
            } catch (...) {
                error = std::current_exception();  // the result did not decode
            }
            State* s = ref.get();
            const std::uint32_t w = s->lock_unless_claimed();
            if (w & taskdist::detail::TaskStateBase::claimed) {
                ref.release();  // cancelled meanwhile
                return;
            }
            s->set_flags(taskdist::detail::TaskStateBase::claimed);
            if (error) {
                s->store_error(error);
            } else if constexpr (!std::is_void_v<Result>) {
                s->store_value(std::move(*value));
            }
            s->unlock();
            ref.publish();
        }

        void deliver(std::string_view task_id, Status status, std::string_view body) {
            std::vector<Ref> refs;
            {
                std::lock_guard lock(map_mutex);
                take_waiting(task_id, refs);
            }
            for (Ref& r : refs) resolve(r, status, body);
        }

        // Records are read without being taken (LRANGE) and trimmed (LTRIM)
        // once delivered, in the round trip that reads the next ones: a
        // record whose reply a broken connection or a crashed server lost is
        // read again, never lost (LPOP would have lost it). After an error
        // the last trim may or may not have happened; the last batch, if
        // still at the head of the list, is trimmed then, not delivered twice.
        void read_replies(std::stop_token st) {
            char block[32];
            std::snprintf(block, sizeof block, "%.3f", static_cast<double>(options.block.count()) / 1000.0);
            Reply delivered;         // the last batch read; trimmed by the next read
            bool unsure = false;     // an error came after it: was it trimmed?
            while (!st.stop_requested()) {
                try {
                    if (unsure) {
                        unsure = false;
                        if (!still_at_head(delivered)) delivered = Reply();
                    }
                    const std::string trim = std::to_string(delivered.size());
                    std::vector<Reply> r = read_conn.pipeline({{"LTRIM", reply_key, trim, "-1"}, {"LRANGE", reply_key, "0", "255"}});
                    for (const Reply& x : r) {
                        if (x.is_error()) throw RedisError("taskdist::redis: reading replies: " + std::string(x.str()));
                    }
                    delivered = std::move(r[1]);
                    if (delivered.size() == 0) {
                        // Wait for a record without taking it: moving a list's
                        // last element to its own end leaves the list as it was.
                        (void)read_conn.command({"BLMOVE", reply_key, reply_key, "RIGHT", "RIGHT", block});
                        continue;
                    }
                    take_records(delivered);
                } catch (const RedisError&) {
                    // Redis went away: try again shortly; replies wait in the list.
                    unsure = delivered.size() > 0;
                    for (int i = 0; i < 10 && !st.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
            }
        }

        /// True if the list still starts with `batch` (its trim did not happen).
        bool still_at_head(const Reply& batch) {
            const Reply head = read_conn.command({"LRANGE", reply_key, "0", std::to_string(batch.size() - 1)});
            if (head.size() != batch.size()) return false;
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (head[i].str() != batch[i].str()) return false;
            }
            return true;
        }

        /// Resolves the handles of a batch of records, the map locked once for all.
        void take_records(const Reply& batch) {
            replies.fetch_add(batch.size(), std::memory_order_relaxed);
            std::vector<ReplyRecord> records;
            records.reserve(batch.size());
            for (std::size_t i = 0; i < batch.size(); ++i) {
                ReplyRecord rec = parse_reply_record(batch[i].str());
                if (rec.task_id.empty()) continue;  // unreadable: nothing to resolve
                if (!rec.status) rec.body = "taskdist::redis: unreadable result record";
                records.push_back(rec);
            }
            std::vector<Ref> refs;
            std::vector<std::size_t> record_of;  // refs[i] resolves with records[record_of[i]]
            refs.reserve(records.size());
            record_of.reserve(records.size());
            {
                std::lock_guard lock(map_mutex);
                for (std::size_t i = 0; i < records.size(); ++i) {
                    take_waiting(records[i].task_id, refs);
                    record_of.resize(refs.size(), i);
                }
            }
            for (std::size_t i = 0; i < refs.size(); ++i) {
                const ReplyRecord& rec = records[record_of[i]];
                resolve(refs[i], rec.status.value_or(Status::error), rec.body);
            }
        }

        ClientOptions options;
        std::string id;
        Keys keys;
        std::string instance;  ///< in generated task ids: unique per Client object
        std::string reply_key;
        std::vector<std::string> streams;  ///< by priority
        std::mutex submit_mutex;
        Connection submit_conn;
        std::string submit_buffer;  ///< commands being written, under submit_mutex
        Connection read_conn;
        std::atomic<std::uint64_t> next{0};
        std::atomic<std::uint64_t> replies{0};
        mutable std::mutex map_mutex;
        // Handles waiting for a result: those of generated ids by number (no
        // string to make or hash per task), those of a caller's id by the id
        // (a duplicate submitted here joins the same entry).
        std::unordered_map<std::uint64_t, Ref> generated;
        std::unordered_map<std::string, std::vector<Ref>> waiting;
        std::jthread reader;
    };

    std::shared_ptr<Core> core_;
};

} // namespace taskdist::redis
