// The scale-out part against a real Redis server (started per test on a port
// of its own): delivery, idempotency, errors, dead letters, leases,
// hand-back at stop, a worker process killed mid-task, and Redis going away.
#include "support.hpp"
#include "redis_support.hpp"

#include <taskdist/redis.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using namespace std::chrono_literals;
namespace rd = taskdist::redis;

/// A Worker serving on its own thread until the object goes.
template <class Task, class Result>
class Serving {
public:
    template <class Handler>
    Serving(Handler h, rd::WorkerOptions o) : worker_(std::move(h), std::move(o)) {
        thread_ = std::jthread([this](std::stop_token st) { worker_.run(st); });
    }
    ~Serving() { stop(); }
    void stop() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
    }
    rd::Worker<Task, Result>& worker() { return worker_; }

private:
    rd::Worker<Task, Result> worker_;
    std::jthread thread_;
};

rd::WorkerOptions worker_options(const RedisServer& server, std::string name, std::size_t threads = 2) {
    rd::WorkerOptions o;
    o.redis = server.endpoint();
    o.queue = "q";
    o.consumer = std::move(name);
    o.lease = std::chrono::milliseconds(400);
    o.block = std::chrono::milliseconds(50);
    o.pool.workers = threads;
    return o;
}

rd::ClientOptions client_options(const RedisServer& server) {
    rd::ClientOptions o;
    o.redis = server.endpoint();
    o.queue = "q";
    o.block = std::chrono::milliseconds(50);
    return o;
}

std::int64_t stream_length(rd::Connection& c, const std::string& key) { return c.command({"XLEN", key}).integer(); }

TEST_CASE("redis: 300 tasks from one client through two workers each resolve once with their own value") {
    RedisServer server;
    std::atomic<int> runs{0};
    auto square = [&runs](std::int64_t x) {
        runs.fetch_add(1);
        return x * x;
    };
    Serving<std::int64_t, std::int64_t> a(square, worker_options(server, "a"));
    Serving<std::int64_t, std::int64_t> b(square, worker_options(server, "b"));
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));

    std::vector<taskdist::TaskHandle<std::int64_t>> handles;
    for (std::int64_t i = 0; i < 300; ++i) handles.push_back(client.submit(i, {.priority = static_cast<int>(i % 3)}));
    for (std::int64_t i = 0; i < 300; ++i) {
        CAPTURE(i);
        REQUIRE(handles[static_cast<std::size_t>(i)].wait_for(patience));
        CHECK(handles[static_cast<std::size_t>(i)].get() == i * i);
    }
    CHECK(runs.load() == 300);
    CHECK(client.pending() == 0);
    CHECK(client.replies() == 300);
    // Counters are bumped after a result is published: read them once stopped.
    a.stop();
    b.stop();
    const auto ca = a.worker().counters(), cb = b.worker().counters();
    CHECK(ca.completed + cb.completed == 300);
    CHECK(ca.taken + cb.taken == 300);
    CHECK(ca.dead_lettered + cb.dead_lettered == 0);
    // Each ran its share on its local pool.
    CHECK(a.worker().pool_stats().completed + b.worker().pool_stats().completed == 300);
    // Completed entries are deleted: the streams are empty again.
    rd::Connection c(server.endpoint());
    for (int p = 0; p < 3; ++p) CHECK(stream_length(c, rd::Keys("q").stream(p)) == 0);
}

TEST_CASE("redis: strings and byte vectors cross intact, and void results resolve") {
    RedisServer server;
    Serving<std::string, std::vector<std::uint8_t>> w(
        [](const std::string& s) { return std::vector<std::uint8_t>(s.rbegin(), s.rend()); }, worker_options(server, "w"));
    rd::Client<std::string, std::vector<std::uint8_t>> client(client_options(server));
    const std::string binary("a\0b\nc\xff", 6);
    auto h = client.submit(binary);
    REQUIRE(h.wait_for(patience));
    CHECK(h.get() == std::vector<std::uint8_t>(binary.rbegin(), binary.rend()));

    std::atomic<int> seen{0};
    Serving<std::int32_t, void> v([&seen](std::int32_t x) { seen.fetch_add(x); },
                                  [&] {
                                      auto o = worker_options(server, "v");
                                      o.queue = "void";
                                      return o;
                                  }());
    auto co = client_options(server);
    co.queue = "void";
    rd::Client<std::int32_t, void> vc(co);
    auto hv = vc.submit(41);
    REQUIRE(hv.wait_for(patience));
    hv.get();
    CHECK(seen.load() == 41);
}

TEST_CASE("redis: the same id submitted twice is queued once; both handles get the one result, and a later "
          "duplicate resolves at once") {
    RedisServer server;
    std::atomic<int> runs{0};
    Gate gate;
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            runs.fetch_add(1);
            gate.wait();
            return x + 1;
        },
        worker_options(server, "w"));
    const auto open = gate.open_on_exit();
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    auto first = client.submit(10, {.id = "order-7"});
    auto second = client.submit(99, {.id = "order-7"});  // same id: not queued, whatever the body
    gate.open();
    REQUIRE(first.wait_for(patience));
    REQUIRE(second.wait_for(patience));
    CHECK(first.get() == 11);
    CHECK(second.get() == 11);

    auto later = client.submit(5, {.id = "order-7"});
    REQUIRE(later.wait_for(patience));
    CHECK(later.get() == 11);
    CHECK(runs.load() == 1);
    CHECK(w.worker().counters().taken == 1);
}

TEST_CASE("redis: higher priority levels are served first: queued high tasks all run before queued low ones") {
    RedisServer server;
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    rd::Connection c(server.endpoint());
    rd::ensure_groups(c, rd::Keys("q"), 3);
    std::vector<taskdist::TaskHandle<std::int64_t>> hs;
    // Interleaved submissions: even ids low (0), odd ids high (2).
    for (std::int64_t i = 0; i < 20; ++i) hs.push_back(client.submit(i, {.priority = i % 2 ? 2 : 0}));

    std::mutex m;
    std::vector<std::int64_t> order;
    auto o = worker_options(server, "one", 1);
    o.slots = 1;  // one at a time, so the order is the reading order
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            std::lock_guard lock(m);
            order.push_back(x);
            return x;
        },
        o);
    for (auto& h : hs) REQUIRE(h.wait_for(patience));
    std::lock_guard lock(m);
    REQUIRE(order.size() == 20);
    for (std::size_t k = 0; k < 10; ++k) CHECK(order[k] % 2 == 1);   // the high ones, first
    for (std::size_t k = 10; k < 20; ++k) CHECK(order[k] % 2 == 0);  // then the low ones
    // Within a level, in submission order.
    CHECK(std::is_sorted(order.begin(), order.begin() + 10));
    CHECK(std::is_sorted(order.begin() + 10, order.end()));
}

TEST_CASE("redis: a worker that lost its lease has its late result dropped, and it does not acknowledge the new "
          "owner's delivery") {
    RedisServer server;
    rd::Client<std::int64_t, std::string> client(client_options(server));
    Gate gate;
    std::promise<void> running;
    auto oa = worker_options(server, "partitioned", 1);
    Serving<std::int64_t, std::string> a(
        [&](std::int64_t) {
            running.set_value();
            gate.wait();
            return std::string("from partitioned");
        },
        oa);
    const auto open = gate.open_on_exit();
    auto h = client.submit(1);
    auto started = running.get_future();
    REQUIRE(arrives(started));

    // Another worker takes the entry over, as if the first had gone silent.
    rd::Connection c(server.endpoint());
    const std::string stream = rd::Keys("q").stream(1);
    rd::Reply pending = c.command({"XPENDING", stream, "workers", "-", "+", "10"});
    REQUIRE(pending.size() == 1);
    const std::string entry(pending[0][0].str());
    c.command({"XCLAIM", stream, "workers", "new-owner", "0", entry});

    gate.open();  // the first worker finishes late
    for (int i = 0; i < 1000 && a.worker().counters().superseded == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(a.worker().counters().superseded == 1);
    CHECK(a.worker().counters().completed == 0);
    CHECK_FALSE(h.ready());
    // Still pending, for the new owner: the late result did not acknowledge it.
    rd::Reply still = c.command({"XPENDING", stream, "workers", "-", "+", "10"});
    REQUIRE(still.size() == 1);
    CHECK(std::string(still[0][1].str()) == "new-owner");
    a.stop();  // so that it cannot be the one that takes the task over next

    // The new owner goes silent too; a healthy worker takes over and its result is the one delivered.
    Serving<std::int64_t, std::string> b([](std::int64_t) { return std::string("from healthy"); },
                                         worker_options(server, "healthy", 1));
    REQUIRE(h.wait_for(patience));
    CHECK(h.get() == "from healthy");
    CHECK(client.replies() == 1);
}

TEST_CASE("redis: completing a batch removes only its own entries: not one taken over meanwhile (its result is "
          "dropped, the entry left to its new owner), nor ones still queued") {
    RedisServer server;
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    Gate gate;
    std::atomic<int> runs{0};
    auto o = worker_options(server, "w");
    o.slots = 8;
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            runs.fetch_add(1);
            gate.wait();
            return x + 1;
        },
        o);
    const auto open = gate.open_on_exit();
    std::vector<std::int64_t> values;
    for (std::int64_t i = 0; i < 40; ++i) values.push_back(i);
    auto handles = client.submit_many(values);

    // The worker holds its 8 slots' worth; 32 wait in the stream.
    rd::Connection c(server.endpoint());
    const std::string stream = rd::Keys("q").stream(1);
    const auto pending = [&] {
        const rd::Reply r = c.raw({"XPENDING", stream, "workers"});
        return r.is_error() ? 0 : r[0].integer();  // an error: the worker has not made the group yet
    };
    for (int i = 0; i < 1000 && pending() < 8; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(pending() == 8);
    // Another consumer takes over one in the middle of what the worker holds
    // (JUSTID: its delivery count stays), as if the worker's lease had run out.
    const rd::Reply held = c.command({"XPENDING", stream, "workers", "-", "+", "8"});
    const std::string entry(held[3][0].str());
    c.command({"XCLAIM", stream, "workers", "other", "0", entry, "JUSTID"});

    gate.open();
    // The worker's result for it is dropped; the entry stays pending for its
    // new owner, which goes silent: the worker takes it over after the lease
    // and runs it again. Had the worker's completion deleted it (or any of
    // the queued ones), its handle would never resolve.
    for (std::size_t i = 0; i < handles.size(); ++i) {
        CAPTURE(i);
        REQUIRE(handles[i].wait_for(patience));
        CHECK(handles[i].get() == static_cast<std::int64_t>(i) + 1);
    }
    CHECK(runs.load() == 41);
    CHECK(client.replies() == 40);
    w.stop();
    const auto counters = w.worker().counters();
    CHECK(counters.completed == 40);
    CHECK(counters.superseded == 1);
    CHECK(counters.reclaimed == 1);
    CHECK(stream_length(c, stream) == 0);
}

TEST_CASE("redis: a duplicate submitted by another client while the task runs gets the one result too") {
    RedisServer server;
    std::atomic<int> runs{0};
    Gate gate;
    std::promise<void> running;
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            if (runs.fetch_add(1) == 0) running.set_value();
            gate.wait();
            return x * 3;
        },
        worker_options(server, "w"));
    const auto open = gate.open_on_exit();
    rd::Client<std::int64_t, std::int64_t> first(client_options(server));
    rd::Client<std::int64_t, std::int64_t> second(client_options(server));
    auto h1 = first.submit(5, {.id = "shared-job"});
    auto started = running.get_future();
    REQUIRE(arrives(started));
    auto h2 = second.submit(5, {.id = "shared-job"});  // in flight: not queued again
    gate.open();
    REQUIRE(h1.wait_for(patience));
    REQUIRE(h2.wait_for(patience));
    CHECK(h1.get() == 15);
    CHECK(h2.get() == 15);
    CHECK(runs.load() == 1);
    CHECK(first.replies() == 1);
    CHECK(second.replies() == 1);
}

TEST_CASE("redis: a handler's exception arrives as RemoteTaskError; a timeout as TaskTimeout") {
    RedisServer server;
    Serving<std::int64_t, std::int64_t> w(
        [](std::int64_t x, taskdist::TaskContext& ctx) -> std::int64_t {
            if (x == 1) throw std::out_of_range("no such account");
            if (x == 2) {
                while (!ctx.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            return x;
        },
        worker_options(server, "w"));
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    auto thrown = client.submit(1);
    auto slow = client.submit(2, {.timeout = std::chrono::milliseconds(50)});
    auto fine = client.submit(3, {.timeout = std::chrono::seconds(5)});
    REQUIRE(thrown.wait_for(patience));
    REQUIRE(slow.wait_for(patience));
    REQUIRE(fine.wait_for(patience));
    try {
        (void)thrown.get();
        FAIL("expected RemoteTaskError");
    } catch (const rd::RemoteTaskError& e) {
        CHECK(std::string(e.what()).find("no such account") != std::string::npos);
        CHECK(std::string(e.what()).find("out_of_range") != std::string::npos);
    }
    CHECK(outcome_of(slow) == "TaskTimeout");
    CHECK(fine.get() == 3);
}

TEST_CASE("redis: corrupt messages are dead-lettered with their reason and the worker keeps serving") {
    RedisServer server;
    Serving<std::int64_t, std::int64_t> w([](std::int64_t x) { return -x; }, worker_options(server, "w"));
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    auto first = client.submit(1);
    REQUIRE(await(first) == -1);  // the group exists and the worker serves

    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    const std::string reply = keys.reply(client.client_id());
    const std::string future = "3" + rd::pack_envelope("x", reply, 0, false, "12345678").substr(1);
    c.command({"XADD", keys.stream(1), "*", "garbage", "yes"});                                         // no version
    c.command({"XADD", keys.stream(1), "*", "v", "1", "id", "x", "reply", reply, "body", "12345678"});  // format 1
    c.command({"XADD", keys.stream(1), "*", "t", future});                                              // a later format
    c.command({"XADD", keys.stream(1), "*", "t", "2 5 99 0 0\nshort12345678"});                        // lengths past the end
    c.command({"XADD", keys.stream(1), "*", "t", rd::pack_envelope("short", reply, 0, false, "abc")});  // 3 bytes, not 8
    auto after = client.submit(2);
    REQUIRE(after.wait_for(patience));
    CHECK(after.get() == -2);

    // All five reach the dead-letter stream, each with a reason.
    std::string reasons;
    for (int i = 0; i < 500 && stream_length(c, keys.dead()) < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rd::Reply dead = c.command({"XRANGE", keys.dead(), "-", "+"});
    REQUIRE(dead.size() == 5);
    for (std::size_t i = 0; i < dead.size(); ++i) {
        const auto reason = rd::field(dead[i][1], "reason");
        REQUIRE(reason.has_value());
        reasons += std::string(*reason) + "\n";
    }
    INFO(reasons);
    CHECK(reasons.find("no format version") != std::string::npos);
    CHECK(reasons.find("format version '1' (in a field 'v')") != std::string::npos);
    CHECK(reasons.find("format version '3'") != std::string::npos);
    CHECK(reasons.find("claims more than its 13 bytes") != std::string::npos);
    CHECK(reasons.find("expected 8 bytes") != std::string::npos);
    w.stop();  // counters are bumped after the script: read them once stopped
    CHECK(w.worker().counters().dead_lettered == 5);
    for (int p = 0; p < 3; ++p) CHECK(stream_length(c, keys.stream(p)) == 0);
}

TEST_CASE("redis: the envelope is one field that reads back exactly, and a dead-lettered entry's client is found "
          "in it (or in a format 1 entry's own fields)") {
    RedisServer server;
    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    const std::string reply = keys.reply("c 1");
    const std::string id = "a b\n7";                // spaces and a newline: lengths, not separators, bound the parts
    const std::string body("\n2 1 1 0 0\n\0x", 12);  // looks like a header
    c.command({"XADD", "s", "*", "t", rd::pack_envelope(id, reply, 1500, true, body)});
    c.command({"XADD", "s", "*", "v", "1", "id", "old", "reply", reply, "keep", "0", "body", "x"});
    const rd::Reply entries = c.command({"XRANGE", "s", "-", "+"});
    REQUIRE(entries.size() == 2);
    REQUIRE(entries[0][1].size() == 2);

    const rd::EnvelopeView e = rd::view_envelope(entries[0][1], keys);
    CHECK(std::string(e.task_id) == id);
    CHECK(std::string(e.reply) == reply);
    CHECK(e.timeout_ms == 1500);
    CHECK(e.keep);
    CHECK(std::string(e.body) == body);
    const rd::EnvelopeAddress now = rd::envelope_address(entries[0][1]);
    CHECK((now.task_id == id && now.reply == reply && now.keep));
    const rd::EnvelopeAddress old = rd::envelope_address(entries[1][1]);
    CHECK((old.task_id == "old" && old.reply == reply && !old.keep));
    CHECK_THROWS_WITH(rd::view_envelope(entries[1][1], keys), Catch::Contains("format version '1' (in a field 'v')"));
    // Numbers in their shortest form only, so an envelope packs back to its bytes.
    CHECK_THROWS_WITH(rd::detail::split_envelope("2 02 3 0 1\nidrep"), Catch::Contains("bad id length"));
    CHECK(rd::detail::split_envelope("2 0 0 0 1\n").keep);
    // Outside bytes in a reason are cut short: it goes to the dead-letter stream and the client.
    try {
        (void)rd::detail::split_envelope(std::string(100'000, '7') + " 1 1 0 0\nab");
        FAIL("expected DecodeError");
    } catch (const rd::DecodeError& err) {
        CHECK(std::string_view(err.what()).size() < 200);
    }
    CHECK_THROWS_WITH(rd::view_envelope(entries[0][1], rd::Keys("other")), Catch::Contains("is not one of this queue's"));
}

TEST_CASE("redis: an entry with thousands of fields is dead-lettered with its first ones and a note of how many "
          "there were") {
    // Lua's unpack() takes about 8,000 values: passed whole, these 4,100
    // pairs failed the dead-letter script on every reclaim, forever.
    RedisServer server;
    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    rd::ensure_groups(c, keys, 3);
    std::vector<std::string> add{"XADD", keys.stream(1), "*"};
    for (int i = 0; i < 4100; ++i) add.insert(add.end(), {"f" + std::to_string(i), "v"});
    c.command(std::vector<std::string_view>(add.begin(), add.end()));

    Serving<std::int64_t, std::int64_t> w([](std::int64_t x) { return x; }, worker_options(server, "w"));
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (w.worker().counters().dead_lettered == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a counter: nothing to wait on
    }
    REQUIRE(w.worker().counters().dead_lettered == 1);
    CHECK(stream_length(c, keys.stream(1)) == 0);
    const rd::Reply dead = c.command({"XRANGE", keys.dead(), "-", "+"});
    REQUIRE(dead.size() == 1);
    const rd::ReplyView f = dead[0][1];
    // entry, stream, reason, then 1,000 of the pairs, then the note.
    constexpr std::size_t pair = 2;
    REQUIRE(f.size() == pair * (3 + 1000 + 1));
    CHECK(std::string(f[pair * 3].str()) == "f0");
    CHECK(std::string(f[pair * 1002].str()) == "f999");
    CHECK(std::string(f[pair * 1003].str()) == "taskdist-truncated");
    CHECK(std::string(f[pair * 1003 + 1].str()) == "the first 1000 of 4100 field/value pairs");
    CHECK(w.worker().counters().redis_errors == 0);
}

TEST_CASE("redis: a task its worker cannot decode is dead-lettered, and its caller is told why") {
    RedisServer server;
    Serving<std::int64_t, std::int64_t> w([](std::int64_t x) { return x; }, worker_options(server, "w"));
    rd::Client<std::string, std::int64_t> client(client_options(server));  // sends strings where 8-byte integers are read
    auto generated = client.submit("abc");
    auto chosen = client.submit("abcd", {.id = "mine"});
    for (auto* h : {&generated, &chosen}) {
        REQUIRE(h->wait_for(patience));
        try {
            (void)h->get();
            FAIL("expected DeadLettered");
        } catch (const rd::DeadLettered& e) {
            CHECK(std::string(e.what()).find("cannot decode") != std::string::npos);
            CHECK(std::string(e.what()).find("expected 8 bytes") != std::string::npos);
        }
    }
}

TEST_CASE("redis: a task whose workers keep dying is dead-lettered after max_deliveries and its caller gets "
          "DeadLettered") {
    RedisServer server;
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    rd::ensure_groups(c, keys, 3);
    auto h = client.submit(7, {.id = "poison"});

    // Two workers take it and die (read, never complete): deliveries 1 and 2.
    c.command({"XREADGROUP", "GROUP", "workers", "dead-1", "COUNT", "1", "STREAMS", keys.stream(1), ">"});
    std::this_thread::sleep_for(std::chrono::milliseconds(450));
    c.command({"XAUTOCLAIM", keys.stream(1), "workers", "dead-2", "400", "0-0", "COUNT", "1"});
    std::this_thread::sleep_for(std::chrono::milliseconds(450));

    std::atomic<int> runs{0};
    auto o = worker_options(server, "survivor");
    o.max_deliveries = 2;
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            runs.fetch_add(1);
            return x;
        },
        o);
    REQUIRE(h.wait_for(patience));
    try {
        (void)h.get();
        FAIL("expected DeadLettered");
    } catch (const rd::DeadLettered& e) {
        CHECK(std::string(e.what()).find("delivered 3 times") != std::string::npos);
    }
    CHECK(runs.load() == 0);
    CHECK(stream_length(c, keys.dead()) == 1);
}

TEST_CASE("redis: worker options under which a live worker's tasks would look dead are refused with the reason") {
    RedisServer server;
    auto handler = [](std::int64_t x) { return x; };
    auto o = worker_options(server, "w");  // lease 400 ms, block 50 ms
    o.heartbeat = std::chrono::milliseconds(400);
    CHECK_THROWS_WITH((rd::Worker<std::int64_t, std::int64_t>(handler, o)),
                      Catch::Contains("heartbeat + block must be at most two thirds of lease (heartbeat 400 ms, block 50 ms, lease 400 ms)"));
    o.heartbeat = std::chrono::milliseconds(100);
    o.block = std::chrono::milliseconds(200);
    CHECK_THROWS_AS((rd::Worker<std::int64_t, std::int64_t>(handler, o)), std::invalid_argument);
    o.block = std::chrono::milliseconds(166);  // 100 + 166 <= 400 - 400 / 3: the limit
    CHECK_NOTHROW(rd::Worker<std::int64_t, std::int64_t>(handler, o));
    o.lease = std::chrono::milliseconds::max();  // no sum or product of these may overflow (UBSan)
    o.heartbeat = std::chrono::milliseconds(0);
    CHECK_NOTHROW(rd::Worker<std::int64_t, std::int64_t>(handler, o));
    o.heartbeat = std::chrono::milliseconds::max();
    CHECK_THROWS_AS((rd::Worker<std::int64_t, std::int64_t>(handler, o)), std::invalid_argument);
}

TEST_CASE("redis: a dead worker's task is taken over even behind many pending tasks of a live worker") {
    // XAUTOCLAIM looks at no more than ten times COUNT pending entries a
    // call: a worker with one free slot that started every scan at 0-0
    // would never get past the 30 live entries pending before the dead one.
    RedisServer server;
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    rd::ensure_groups(c, keys, 3);
    std::vector<taskdist::TaskHandle<std::int64_t>> live;
    for (std::int64_t i = 0; i < 30; ++i) live.push_back(client.submit(i));
    auto dead = client.submit(1000);
    const rd::Reply read = c.command({"XREADGROUP", "GROUP", "workers", "gone", "COUNT", "31", "STREAMS", keys.stream(1), ">"});
    REQUIRE(read.size() == 1);
    REQUIRE(read[0][1].size() == 31);
    // The 30 older entries move to a live consumer that keeps them fresh,
    // as its heartbeats would; the newest stays with the dead one.
    std::vector<std::string> heartbeat{"XCLAIM", keys.stream(1), "workers", "alive", "0"};
    for (std::size_t i = 0; i < 30; ++i) heartbeat.emplace_back(read[0][1][i][0].str());
    heartbeat.emplace_back("JUSTID");
    const std::vector<std::string_view> beat(heartbeat.begin(), heartbeat.end());
    c.command(beat);

    std::atomic<int> runs{0};
    auto o = worker_options(server, "rescuer", 1);
    o.slots = 1;
    Serving<std::int64_t, std::int64_t> rescuer(
        [&](std::int64_t x) {
            runs.fetch_add(1);
            return x + 1;
        },
        o);
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!dead.wait_for(std::chrono::milliseconds(100)) && std::chrono::steady_clock::now() < deadline) c.command(beat);
    REQUIRE(dead.ready());
    CHECK(dead.get() == 1001);
    CHECK(runs.load() == 1);
    CHECK(rescuer.worker().counters().reclaimed == 1);
    CHECK(c.command({"XPENDING", keys.stream(1), "workers"})[0].integer() == 30);  // the live ones stay where they are
}

TEST_CASE("redis: when the server refuses part of a submit_many batch (out of memory), only those handles fail, "
          "as not queued, and the rest run") {
    RedisServer server;
    rd::Connection admin(server.endpoint());
    rd::Client<std::string, std::string> client(client_options(server));
    const std::string memory(admin.command({"INFO", "memory"}).str());
    const long long used = std::stoll(memory.substr(memory.find("used_memory:") + 12));
    admin.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    admin.command({"CONFIG", "SET", "maxmemory", std::to_string(used + 400'000)});  // room for a few dozen
    const std::vector<std::string> tasks(256, std::string(8192, 'a'));  // one pipelined batch
    auto handles = client.submit_many(tasks);
    admin.command({"CONFIG", "SET", "maxmemory", "0"});

    std::size_t refused = 0;
    std::string what;
    std::vector<std::size_t> queued;
    for (std::size_t i = 0; i < handles.size(); ++i) {
        if (!handles[i].ready()) {
            queued.push_back(i);
            continue;
        }
        ++refused;
        try {
            (void)handles[i].get();
        } catch (const rd::RedisError& e) {
            what = e.what();
        }
    }
    INFO("last error: " << what);
    CHECK(refused > 0);
    CHECK(refused < handles.size());
    CHECK(what.find("not queued: the server refused it: XADD: OOM") != std::string::npos);
    CHECK(stream_length(admin, rd::Keys("q").stream(1)) == static_cast<std::int64_t>(queued.size()));

    std::atomic<int> runs{0};
    Serving<std::string, std::string> w(
        [&](const std::string& s) {
            runs.fetch_add(1);
            return std::to_string(s.size());
        },
        worker_options(server, "w"));
    for (const std::size_t i : queued) {
        REQUIRE(handles[i].wait_for(patience));
        CHECK(handles[i].get() == "8192");
    }
    CHECK(runs.load() == static_cast<int>(queued.size()));
}

TEST_CASE("redis: a reply announcing more elements than any reply may hold fails as a RedisError, not an "
          "allocation, and the connection recovers") {
    // Not Redis: a server that answers its first connection with an array
    // header of 2^25 elements (256 MiB of element pointers, were they
    // allocated; hiredis 0.14 accepts up to 2^31) and its second with PONG.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 2) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    std::jthread server([listener] {
        for (const std::string_view answer : {std::string_view("*33554432\r\n"), std::string_view("+PONG\r\n")}) {
            const int c = ::accept(listener, nullptr, nullptr);
            if (c < 0) return;
            std::array<char, 256> command{};
            if (::read(c, command.data(), command.size()) > 0) (void)!::write(c, answer.data(), answer.size());
            ::close(c);
        }
    });
    rd::Connection conn(rd::Endpoint{.host = "127.0.0.1", .port = ntohs(addr.sin_port)});
    CHECK_THROWS_WITH(conn.command({"PING"}), Catch::Contains("Out of memory"));
    CHECK_FALSE(conn.connected());
    CHECK(std::string(conn.command({"PING"}).str()) == "PONG");
    server.join();
    ::close(listener);
}

TEST_CASE("redis: a result over max_result_bytes completes as an error saying so, and the worker's other results "
          "still arrive") {
    // The server takes no bulk string over 1 MB now: a 2 MB result sent as
    // it is would be refused on every try, and the worker's later results
    // would wait behind it for good.
    RedisServer server;
    rd::Connection admin(server.endpoint());
    admin.command({"CONFIG", "SET", "proto-max-bulk-len", "1mb"});
    auto o = worker_options(server, "w");
    o.max_result_bytes = 512 << 10;
    Serving<std::string, std::string> w([](const std::string& s) { return s == "big" ? std::string(2 << 20, 'x') : s + "!"; },
                                        o);
    rd::Client<std::string, std::string> client(client_options(server));
    auto big = client.submit("big");
    auto small = client.submit("small");
    REQUIRE(big.wait_for(patience));
    CHECK_THROWS_WITH(big.get(), Catch::Contains("the result is 2097152 bytes, over WorkerOptions::max_result_bytes (524288)"));
    REQUIRE(small.wait_for(patience));
    CHECK(small.get() == "small!");
    o.max_result_bytes = 0;
    CHECK_THROWS_AS((rd::Worker<std::string, std::string>([](const std::string& s) { return s; }, o)), std::invalid_argument);
}

TEST_CASE("redis: a priority or timeout no worker would take is refused at submit, before anything is queued") {
    RedisServer server;
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));  // 3 levels
    CHECK_THROWS_WITH(client.submit(1, {.priority = -2}), Catch::Contains("priority -2 is outside 0..2 (or -1: the middle level)"));
    CHECK_THROWS_AS(client.submit(1, {.priority = 3}), std::invalid_argument);
    CHECK_THROWS_WITH(client.submit_many({1, 2}, {.timeout = std::chrono::hours(24 * 367)}),
                      Catch::Contains("over the most a worker takes (366 days)"));
    rd::Connection c(server.endpoint());
    for (int p = 0; p < 3; ++p) CHECK(c.command({"EXISTS", rd::Keys("q").stream(p)}).integer() == 0);
    CHECK(client.pending() == 0);
}

TEST_CASE("redis: a lease kept alive by heartbeats is not taken over, however long the task runs") {
    RedisServer server;
    std::atomic<int> runs{0};
    auto slow = [&](std::int64_t x) {
        runs.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the work: almost 4 leases long
        return x;
    };
    auto oa = worker_options(server, "holder", 1);
    oa.heartbeat = std::chrono::milliseconds(100);
    Serving<std::int64_t, std::int64_t> a(slow, oa);
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    auto h = client.submit(1);
    for (int i = 0; i < 500 && a.worker().counters().taken == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(a.worker().counters().taken == 1);
    Serving<std::int64_t, std::int64_t> b(slow, worker_options(server, "idle-thief", 1));
    REQUIRE(h.wait_for(patience));
    CHECK(h.get() == 1);
    CHECK(runs.load() == 1);
    CHECK(b.worker().counters().reclaimed == 0);
}

TEST_CASE("redis: a worker stopping cleanly hands back what it took but never started, and finishes the rest") {
    RedisServer server;
    Gate gate;
    std::atomic<int> started{0};
    auto o = worker_options(server, "leaving", 1);
    o.slots = 4;  // takes 4, runs 1 at a time
    std::map<std::int64_t, int> ran_by_leaving;
    std::mutex m;
    auto first = std::make_unique<Serving<std::int64_t, std::int64_t>>(
        [&](std::int64_t x) {
            started.fetch_add(1);
            {
                std::lock_guard lock(m);
                ++ran_by_leaving[x];
            }
            gate.wait();
            return x * 10;
        },
        o);
    const auto open = gate.open_on_exit();
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    std::vector<taskdist::TaskHandle<std::int64_t>> hs;
    for (std::int64_t i = 0; i < 4; ++i) hs.push_back(client.submit(i));
    for (int i = 0; i < 1000 && (first->worker().counters().taken < 4 || started.load() < 1); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(first->worker().counters().taken == 4);
    REQUIRE(started.load() == 1);

    // Stop while one runs and three wait: the three go back at once, then the
    // running one is let finish.
    std::thread stopper([&] { first->stop(); });
    for (int i = 0; i < 6000 && first->worker().counters().handed_back < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(started.load() == 1);
    gate.open();
    stopper.join();
    CHECK(first->worker().counters().handed_back == 3);
    CHECK(first->worker().counters().completed == 1);

    std::atomic<int> second_runs{0};
    Serving<std::int64_t, std::int64_t> second(
        [&](std::int64_t x) {
            second_runs.fetch_add(1);
            return x * 10;
        },
        worker_options(server, "staying"));
    for (std::int64_t i = 0; i < 4; ++i) {
        REQUIRE(hs[static_cast<std::size_t>(i)].wait_for(patience));
        CHECK(hs[static_cast<std::size_t>(i)].get() == i * 10);
    }
    CHECK(second_runs.load() == 3);  // no lease wait: handed back, not abandoned
    CHECK(second.worker().counters().reclaimed == 0);
}

TEST_CASE("redis: a result on its way to Redis takes no slot: the worker reads on while results cannot be "
          "delivered, and holds at most twice `slots` tasks") {
    RedisServer server;
    rd::Connection c(server.endpoint());
    const rd::Keys keys("q");
    rd::ensure_groups(c, keys, 3);
    // Every completion script fails (WRONGTYPE) while this reply list is a string.
    const std::string blocked = keys.reply("blocked");
    c.command({"SET", blocked, "not a list"});
    const auto queue = [&](std::int64_t v) {
        c.command({"XADD", keys.stream(1), "*", "t",
                   rd::pack_envelope("t" + std::to_string(v), blocked, 0, false, rd::Codec<std::int64_t>::encode(v))});
    };
    Gate gate;
    std::atomic<int> runs{0};
    auto o = worker_options(server, "w", 2);
    o.slots = 2;
    Serving<std::int64_t, std::int64_t> w(
        [&](std::int64_t x) {
            runs.fetch_add(1);
            if (x == 2) gate.wait();
            return x;
        },
        o);
    const auto open = gate.open_on_exit();
    const auto runs_reach = [&](int n) {
        for (int i = 0; i < 6000 && runs.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return runs.load() >= n;
    };
    queue(1);
    REQUIRE(runs_reach(1));  // 1 finishes; its result cannot be delivered
    queue(2);
    REQUIRE(runs_reach(2));  // 2 runs and blocks
    queue(3);
    REQUIRE(runs_reach(3));  // 2 takes one slot, 1's result none: 3 is read, and finishes
    queue(4);
    REQUIRE(runs_reach(4));  // the same for 4
    // Four held (three results waiting, 2 running), twice the slots: 5 stays
    // in the stream (the pause gives a wrong read six rounds of the loop).
    queue(5);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(runs.load() == 4);
    CHECK(w.worker().counters().taken == 4);

    gate.open();
    c.command({"DEL", blocked});
    REQUIRE(runs_reach(5));
    for (int i = 0; i < 6000 && c.command({"LLEN", blocked}).integer() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(c.command({"LLEN", blocked}).integer() == 5);
    w.stop();
    CHECK(w.worker().counters().completed == 5);
    CHECK(w.worker().counters().redis_errors >= 1);
}

TEST_CASE("redis: with the server gone, submit throws RedisError and workers keep retrying; when it is back, "
          "work resumes") {
    RedisServer server;
    Serving<std::int64_t, std::int64_t> w([](std::int64_t x) { return x + 100; }, worker_options(server, "w"));
    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    auto before = client.submit(1);
    REQUIRE(await(before) == 101);

    server.stop();
    CHECK_THROWS_AS(client.submit(2), rd::RedisError);
    for (int i = 0; i < 6000 && w.worker().counters().redis_errors == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(w.worker().counters().redis_errors > 0);

    server.start();  // empty: no persistence
    auto h = client.submit(3);
    REQUIRE(h.wait_for(patience));
    CHECK(h.get() == 103);
}

#if defined(TASKDIST_REDIS_WORKER_PROC)
/// Worker processes (tests/redis_worker_proc.cpp), killed and reaped when the object goes.
class WorkerProcs {
public:
    explicit WorkerProcs(const RedisServer& server) : port_(std::to_string(server.port())) {}
    WorkerProcs(const WorkerProcs&) = delete;
    WorkerProcs& operator=(const WorkerProcs&) = delete;
    ~WorkerProcs() {
        for (pid_t p : pids_) {
            ::kill(p, SIGKILL);
            ::waitpid(p, nullptr, 0);
        }
    }
    void start(const std::string& name, int task_ms) {
        pids_.push_back(spawn({TASKDIST_REDIS_WORKER_PROC, port_, name, std::to_string(task_ms)}));
    }
    /// How many are still running (none died of the faults).
    std::size_t alive() const {
        std::size_t n = 0;
        for (pid_t p : pids_) n += ::waitpid(p, nullptr, WNOHANG) == 0 ? 1 : 0;
        return n;
    }
    std::size_t size() const { return pids_.size(); }

private:
    std::string port_;
    std::vector<pid_t> pids_;
};

/// A command retried through an outage, bounded by patience.
rd::Reply command_through_outage(rd::Connection& c, const std::vector<std::string_view>& args) {
    for (auto until = Clock::now() + patience;;) {
        try {
            return c.command(args);
        } catch (const rd::RedisError&) {
            if (Clock::now() > until) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
}

/// Waits for each handle (task i doubles i) and returns the indices whose
/// value was wrong; `where`, if given, explains a handle that never resolves.
std::set<std::int64_t> wrong_doubles(std::vector<taskdist::TaskHandle<std::int64_t>>& hs,
                                     const std::function<std::string(std::int64_t)>& where = {}) {
    std::set<std::int64_t> wrong;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        auto& h = hs[i];
        REQUIRE(h.valid());
        const auto n = static_cast<std::int64_t>(i);
        if (!h.wait_for(patience) && where) FAIL_CHECK(where(n));
        REQUIRE(h.wait_for(patience));
        if (h.get() != 2 * n) wrong.insert(n);
    }
    return wrong;
}

/// What Redis knows of task t<i>, for a failure message.
std::string where_is(const RedisServer& server, const std::string& client_id, std::int64_t i) {
    rd::Connection d(server.endpoint());
    const rd::Keys k("q");
    const std::string id = "t" + std::to_string(i);
    return "task " + id + " unresolved: idempotency record " +
           (d.command({"EXISTS", k.idempotency(id)}).integer() ? "set" : "missing") + ", result record " +
           (d.command({"EXISTS", k.done(id)}).integer() ? "set" : "missing") + ", ran " +
           (d.command({"HEXISTS", "test:runs", std::to_string(i)}).integer() ? "yes" : "no") + ", queued " +
           std::to_string(d.command({"XLEN", k.stream(1)}).integer()) + ", pending " +
           std::to_string(d.command({"XPENDING", k.stream(1), "workers"})[0].integer()) + ", in the reply list " +
           std::to_string(d.command({"LLEN", k.reply(client_id)}).integer());
}

TEST_CASE("redis: the server killed (SIGKILL) and restarted twice while three worker processes serve and a client "
          "submits: every task resolves once with its value, submits refused during the outage go through again") {
    RedisServer server(Persistence::durable);
    WorkerProcs procs(server);
    for (const char* name : {"p1", "p2", "p3"}) procs.start(name, 3);

    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    constexpr std::int64_t n = 600;
    std::vector<taskdist::TaskHandle<std::int64_t>> hs(static_cast<std::size_t>(n));
    std::atomic<std::int64_t> submitted{0};
    std::atomic<int> refused{0};
    // Submits at a steady pace; a submit refused with RedisError is repeated
    // with the same id (idempotent) until the server takes it: the recipe
    // the Client documents.
    std::jthread producer([&](std::stop_token st) {
        for (std::int64_t i = 0; i < n && !st.stop_requested(); ++i) {
            for (;;) {
                try {
                    hs[static_cast<std::size_t>(i)] = client.submit(i, {.id = "t" + std::to_string(i)});
                    break;
                } catch (const rd::RedisError&) {
                    refused.fetch_add(1);
                    refused.notify_all();
                    if (st.stop_requested()) return;
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
            }
            submitted.store(i + 1);
            submitted.notify_all();
            if (i % 20 == 19) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a steady stream, not one burst
        }
    });

    // Each restart lands mid-stream: the producer is at a third, then two
    // thirds, and the server stays down until the producer has been refused.
    for (std::int64_t at : {n / 3, 2 * n / 3}) {
        for (auto s = submitted.load(); s < at; s = submitted.load()) submitted.wait(s);
        const int refused_before = refused.load();
        server.stop();
        for (auto r = refused.load(); r == refused_before; r = refused.load()) refused.wait(r);
        server.start();
    }
    producer.join();
    CHECK(refused.load() >= 2);

    const auto wrong = wrong_doubles(hs, [&](std::int64_t i) { return where_is(server, client.client_id(), i); });
    CHECK(wrong.empty());
    CHECK(client.pending() == 0);
    CHECK(client.replies() == static_cast<std::uint64_t>(n));  // one result record per task: none answered twice
    rd::Connection c(server.endpoint());
    CHECK(command_through_outage(c, {"HLEN", "test:runs"}).integer() == n);  // every task ran
    CHECK(procs.alive() == procs.size());  // the workers rode out both restarts
}

TEST_CASE("redis: one worker's connections cut again and again (CLIENT KILL), and the client's now and then, while "
          "three worker processes serve: every result arrives once, and the cut worker keeps serving between cuts") {
    RedisServer server;
    WorkerProcs procs(server);
    for (const char* name : {"p1", "p2", "p3"}) procs.start(name, 3);

    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    std::vector<taskdist::TaskHandle<std::int64_t>> hs;

    std::atomic<int> cuts{0};
    std::atomic<int> client_cuts{0};
    std::atomic<long long> p1_runs_at_first_cut{-1};
    {
        // Cuts every connection p1's worker has (its read loop and its
        // completer), every 20 to 80 ms, until all results are in; every
        // other time the client's (its reply reader among them) too.
        std::jthread cutter([&](std::stop_token st) {
            rd::Connection k(server.endpoint());
            std::uint64_t r = 12345;
            while (!st.stop_requested()) {
                const std::string list(k.command({"CLIENT", "LIST"}).str());
                std::size_t cut_now = 0;
                for (std::size_t pos = 0; pos < list.size();) {
                    const std::size_t end = std::min(list.find('\n', pos), list.size());
                    const std::string line = list.substr(pos, end - pos);
                    pos = end + 1;
                    const bool worker = line.find(" name=taskdist-worker:p1 ") != std::string::npos;
                    const bool reader = line.find(" name=taskdist-client:" + client.client_id() + " ") != std::string::npos;
                    if (!worker && !(reader && (r >> 40) % 2 == 0)) continue;
                    if (reader) client_cuts.fetch_add(1);
                    const std::string id = line.substr(3, line.find(' ') - 3);  // "id=<n> ..."
                    cut_now += static_cast<std::size_t>(k.command({"CLIENT", "KILL", "ID", id}).integer());
                }
                if (cut_now > 0) {
                    if (cuts.fetch_add(1) == 0) {
                        const rd::Reply ran = k.command({"HGET", "test:ran-by", "p1"});
                        p1_runs_at_first_cut.store(ran.is_nil() ? 0 : std::stoll(std::string(ran.str())));
                    }
                }
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                std::this_thread::sleep_for(std::chrono::milliseconds(20 + (r >> 33) % 60));
            }
        });

        // Tasks go in waves until the cuts this test is about have happened
        // (how many tasks that takes depends on the machine's speed): three
        // of p1's, one of the client's, and p1 serving after its first; and
        // 1,200 tasks at least.
        rd::Connection probe(server.endpoint());
        const auto p1_runs = [&]() -> long long {
            const rd::Reply ran = probe.command({"HGET", "test:ran-by", "p1"});
            return ran.is_nil() ? 0 : std::stoll(std::string(ran.str()));
        };
        const auto give_up = std::chrono::steady_clock::now() + patience;
        constexpr std::int64_t wave = 300;
        do {
            const auto first = static_cast<std::int64_t>(hs.size());
            for (std::int64_t i = first; i < first + wave; ++i) {
                // A submit whose connection was just cut is refused; the
                // Client's recipe is to submit it again with the same id.
                for (int tries = 0;; ++tries) {
                    try {
                        hs.push_back(client.submit(i, {.id = "t" + std::to_string(i)}));
                        break;
                    } catch (const rd::RedisError&) {
                        REQUIRE(tries < 3);  // the server is up: the next connection takes it
                    }
                }
            }
            for (std::size_t i = static_cast<std::size_t>(first); i < hs.size(); ++i) REQUIRE(hs[i].wait_for(patience));
        } while ((hs.size() < 1200 || cuts.load() < 3 || client_cuts.load() < 1 || p1_runs_at_first_cut.load() < 0 ||
                  p1_runs() <= p1_runs_at_first_cut.load()) &&
                 std::chrono::steady_clock::now() < give_up);
        CHECK(wrong_doubles(hs).empty());
    }
    const auto n = static_cast<std::int64_t>(hs.size());
    INFO(n << " tasks; connections of p1 cut " << cuts.load() << " times, the client's " << client_cuts.load());
    CHECK(cuts.load() >= 3);
    CHECK(client_cuts.load() >= 1);
    CHECK(client.pending() == 0);
    CHECK(client.replies() == static_cast<std::uint64_t>(n));  // none answered twice
    rd::Connection c(server.endpoint());
    CHECK(c.command({"HLEN", "test:runs"}).integer() == n);
    const rd::Reply p1 = c.command({"HGET", "test:ran-by", "p1"});
    REQUIRE(!p1.is_nil());
    CHECK(std::stoll(std::string(p1.str())) > p1_runs_at_first_cut.load());
    CHECK(procs.alive() == procs.size());
}

TEST_CASE("redis: three worker processes, one killed with SIGKILL while it holds tasks: every result arrives once, "
          "and the killed worker's tasks ran again elsewhere") {
    RedisServer server;
    const std::string port = std::to_string(server.port());
    // p1's tasks take 50 ms, so that when it is killed both its threads are
    // inside one; the others' take 2 ms.
    std::vector<pid_t> workers;
    workers.push_back(spawn({TASKDIST_REDIS_WORKER_PROC, port, "p1", "50"}));
    workers.push_back(spawn({TASKDIST_REDIS_WORKER_PROC, port, "p2", "2"}));
    workers.push_back(spawn({TASKDIST_REDIS_WORKER_PROC, port, "p3", "2"}));
    struct Reap {
        std::vector<pid_t>& pids;
        ~Reap() {
            for (pid_t p : pids) {
                ::kill(p, SIGKILL);
                ::waitpid(p, nullptr, 0);
            }
        }
    } reap{workers};

    rd::Client<std::int64_t, std::int64_t> client(client_options(server));
    constexpr std::int64_t n = 1000;
    std::vector<taskdist::TaskHandle<std::int64_t>> hs;
    for (std::int64_t i = 0; i < n; ++i) hs.push_back(client.submit(i, {.id = "t" + std::to_string(i)}));

    // Kill p1 while it holds a task it has started. Stop it first and read
    // what it holds then: read first and kill after, and a task p1 finished
    // in between would count as held yet never run again. Its last commands
    // may still sit in Redis's socket buffer once it is stopped; the PING's
    // round trip lets Redis's event loop read them before the XPENDING is
    // served. p1 may be between tasks when stopped: then let it go on and
    // try again.
    rd::Connection c(server.endpoint());
    const std::string stream = rd::Keys("q").stream(1);
    std::set<std::string> held_started;  // values of tasks p1 had started and not finished
    std::size_t held = 0;
    const auto give_up = std::chrono::steady_clock::now() + patience;
    for (int stops = 0; held_started.empty(); ++stops) {
        REQUIRE(stops < 200);
        for (;;) {
            const rd::Reply r = c.command({"HGET", "test:ran-by", "p1"});
            if (!r.is_nil() && std::stoll(std::string(r.str())) >= 4) break;
            REQUIRE(std::chrono::steady_clock::now() < give_up);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling another process's progress
        }
        ::kill(workers[0], SIGSTOP);
        int status = 0;
        REQUIRE(::waitpid(workers[0], &status, WUNTRACED) == workers[0]);
        REQUIRE(WIFSTOPPED(status));
        (void)c.command({"PING"});
        const rd::Reply pending = c.command({"XPENDING", stream, "workers", "-", "+", "100", "p1"});
        held = pending.size();
        for (std::size_t k = 0; k < pending.size(); ++k) {
            const std::string entry(pending[k][0].str());
            const rd::Reply e = c.command({"XRANGE", stream, entry, entry});
            // Gone if p1's lease ran out meanwhile and another worker took
            // the entry over and finished it.
            if (e.size() != 1) continue;
            const std::string id = rd::envelope_address(e[0][1]).task_id;
            REQUIRE(!id.empty());
            const std::string value = id.substr(1);  // "t<i>" carries value i
            if (c.command({"HEXISTS", "test:started:p1", value}).integer() == 1) held_started.insert(value);
        }
        if (held_started.empty()) {
            ::kill(workers[0], SIGCONT);
            std::this_thread::sleep_for(std::chrono::milliseconds(7));  // pacing the next look, not synchronisation
        }
    }
    ::kill(workers[0], SIGKILL);
    ::waitpid(workers[0], nullptr, 0);
    workers.erase(workers.begin());
    INFO("p1 held " << held << " tasks when killed, " << held_started.size() << " of them started");

    CHECK(wrong_doubles(hs).empty());
    CHECK(client.pending() == 0);
    CHECK(client.replies() == static_cast<std::uint64_t>(n));  // no task answered twice
    // Every task ran at least once; the ones p1 held ran again after it died.
    std::size_t reran = 0;
    std::size_t reran_not_by_p1 = 0;
    const rd::Reply runs = c.command({"HGETALL", "test:runs"});
    std::size_t tasks_run = 0;
    for (std::size_t k = 0; k + 1 < runs.size(); k += 2) {
        ++tasks_run;
        if (std::stoll(std::string(runs[k + 1].str())) < 2) continue;
        ++reran;
        // Only p1's death makes a task run twice: p1 must have started it.
        if (c.command({"HEXISTS", "test:started:p1", std::string(runs[k].str())}).integer() != 1) ++reran_not_by_p1;
    }
    CHECK(tasks_run == static_cast<std::size_t>(n));
    CHECK(reran >= held_started.size());
    CHECK(reran_not_by_p1 == 0);
    for (const std::string& v : held_started) {
        INFO("task " << v << ", which p1 held and had started");
        CHECK(std::stoll(std::string(c.command({"HGET", "test:runs", v}).str())) >= 2);
    }
}
#endif

} // namespace
