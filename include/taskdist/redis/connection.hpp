// taskdist::redis: one connection to a Redis server (hiredis), with the
// errors the scale-out part raises.
//
// Thread-safety: a Connection is used by one thread at a time (hiredis
// contexts are not thread-safe); taskdist gives each thread or role its own.
// A connection that fails is dropped and made again on the next command, so a
// server that goes away and comes back costs the commands in between, each of
// which throws RedisError.
#pragma once

#include <hiredis/hiredis.h>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskdist::redis {

/// Redis could not be reached, or answered with an error.
struct RedisError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The handler threw on the worker that ran the task; what() is
/// "<exception type>: <its what()>" as the worker saw it.
struct RemoteTaskError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The task was moved to the dead-letter stream: it was delivered more than
/// max_deliveries times (its workers kept dying), or it could not be decoded.
/// what() gives the reason.
struct DeadLettered : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Where the Redis server is.
struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 6379;
    /// For connecting, and for every reply. Blocking reads ask the server
    /// for less (see WorkerOptions::block): hiredis 0.14 breaks a context for
    /// good when a read times out.
    std::chrono::milliseconds timeout{2000};
    /// Set with CLIENT SETNAME on every (re)connection, so that CLIENT LIST
    /// tells connections apart; empty: no name. Workers and clients name
    /// their own connections when this is empty. Bytes Redis refuses in a
    /// name (space and control characters) become '_'.
    std::string client_name = {};
};

namespace detail {
/// `name` as Redis accepts it in CLIENT SETNAME: printable ASCII, no space.
inline std::string sanitize_client_name(std::string_view name) {
    std::string out(name);
    for (char& c : out) {
        if (c <= ' ' || c > '~') c = '_';
    }
    return out;
}
} // namespace detail

/// A borrowed view of a reply or of one of its elements. Accessors throw
/// RedisError on a type mismatch, so a protocol surprise is an error, not
/// undefined behaviour.
class ReplyView {
public:
    explicit ReplyView(const redisReply* r) noexcept : r_(r) {}
    int type() const noexcept { return r_ ? r_->type : REDIS_REPLY_NIL; }
    bool is_nil() const noexcept { return type() == REDIS_REPLY_NIL; }
    bool is_array() const noexcept { return type() == REDIS_REPLY_ARRAY; }
    bool is_error() const noexcept { return type() == REDIS_REPLY_ERROR; }
    long long integer() const {
        if (type() != REDIS_REPLY_INTEGER) throw RedisError("taskdist::redis: expected an integer reply");
        return r_->integer;
    }
    /// A bulk string, a status, or an error's text.
    std::string_view str() const {
        if (type() != REDIS_REPLY_STRING && type() != REDIS_REPLY_STATUS && type() != REDIS_REPLY_ERROR) {
            throw RedisError("taskdist::redis: expected a string reply");
        }
        return {r_->str, r_->len};
    }
    std::size_t size() const noexcept { return is_array() ? r_->elements : 0; }
    ReplyView operator[](std::size_t i) const {
        if (i >= size()) throw RedisError("taskdist::redis: reply element out of range");
        return ReplyView(r_->element[i]);
    }

private:
    const redisReply* r_;
};

/// An owned reply (shared: copies are cheap), with ReplyView's accessors.
class Reply : public ReplyView {
public:
    using View = ReplyView;
    Reply() noexcept : ReplyView(nullptr) {}
    explicit Reply(redisReply* r) noexcept : ReplyView(r), owner_(r, &freeReplyObject) {}
    /// The whole reply as a view (for code that takes either).
    ReplyView view() const noexcept { return *this; }

private:
    std::shared_ptr<redisReply> owner_;
};

class Connection {
public:
    explicit Connection(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;

    const Endpoint& endpoint() const noexcept { return endpoint_; }

    /// Runs one command (arguments are binary-safe). Throws RedisError when
    /// the server cannot be reached or answers with an error.
    Reply command(const std::vector<std::string_view>& args) {
        Reply r = raw(args);
        if (r.is_error()) throw RedisError("taskdist::redis: " + std::string(r.str()));
        return r;
    }

    /// As command(), but an error reply is returned, not thrown.
    Reply raw(const std::vector<std::string_view>& args) {
        std::string& out = buffer();
        append_command(out, args);
        return std::move(send(out, 1).front());
    }

    /// Sends every command, then reads every reply (one round trip). Error
    /// replies are returned in place, not thrown.
    std::vector<Reply> pipeline(const std::vector<std::vector<std::string_view>>& commands) {
        std::string& out = buffer();
        for (const auto& args : commands) append_command(out, args);
        return send(out, commands.size());
    }

    /// Sends `count` commands written by append_command into `formatted`,
    /// then reads their replies (one round trip). Error replies are returned
    /// in place, not thrown.
    std::vector<Reply> send(std::string_view formatted, std::size_t count) {
        redisContext* c = context();
        if (redisAppendFormattedCommand(c, formatted.data(), formatted.size()) != REDIS_OK) fail(c);
        std::vector<Reply> replies;
        replies.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            void* reply = nullptr;
            if (redisGetReply(c, &reply) != REDIS_OK || !reply) fail(c);
            replies.emplace_back(static_cast<redisReply*>(reply));
        }
        return replies;
    }

    /// Appends one command in the protocol's own form (what hiredis would
    /// write, without its allocations per argument).
    template <class Args>
    static void append_command(std::string& out, const Args& args) {
        append_header(out, '*', std::size(args));
        for (std::string_view a : args) {
            append_header(out, '$', a.size());
            out.append(a).append("\r\n");
        }
    }

    /// Drops the connection; the next command makes a new one.
    void reset() noexcept { ctx_.reset(); }
    bool connected() const noexcept { return ctx_ != nullptr; }

private:
    struct Free {
        void operator()(redisContext* c) const noexcept { redisFree(c); }
    };

    static timeval to_timeval(std::chrono::milliseconds d) {
        timeval tv{};
        tv.tv_sec = static_cast<decltype(tv.tv_sec)>(d.count() / 1000);
        tv.tv_usec = static_cast<decltype(tv.tv_usec)>((d.count() % 1000) * 1000);
        return tv;
    }

    redisContext* context() {
        if (ctx_) return ctx_.get();
        std::unique_ptr<redisContext, Free> c(
            redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, to_timeval(endpoint_.timeout)));
        if (!c) throw RedisError("taskdist::redis: out of memory making a connection");
        if (c->err) {
            throw RedisError("taskdist::redis: cannot connect to " + endpoint_.host + ":" + std::to_string(endpoint_.port) +
                             ": " + c->errstr);
        }
        redisSetTimeout(c.get(), to_timeval(endpoint_.timeout));
        redisEnableKeepAlive(c.get());
        if (!endpoint_.client_name.empty()) {
            const std::string name = detail::sanitize_client_name(endpoint_.client_name);
            const char* argv[] = {"CLIENT", "SETNAME", name.c_str()};
            const std::size_t lens[] = {6, 7, name.size()};
            auto* reply = static_cast<redisReply*>(redisCommandArgv(c.get(), 3, argv, lens));
            if (!reply) {
                throw RedisError("taskdist::redis: " + endpoint_.host + ":" + std::to_string(endpoint_.port) + ": " +
                                 (c->err ? c->errstr : "no reply") + " naming the connection");
            }
            const Reply r(reply);
            if (r.is_error()) throw RedisError("taskdist::redis: CLIENT SETNAME: " + std::string(r.str()));
        }
        ctx_ = std::move(c);
        return ctx_.get();
    }

    static void append_header(std::string& out, char kind, std::size_t n) {
        char buf[24];
        buf[0] = kind;
        const auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf - 2, n);
        (void)ec;  // 21 characters hold any size_t
        end[0] = '\r';
        end[1] = '\n';
        out.append(buf, end + 2);
    }

    /// The reused buffer commands are written into: one allocation per
    /// connection, not one per argument.
    std::string& buffer() {
        buffer_.clear();
        return buffer_;
    }

    [[noreturn]] void fail(redisContext* c) {
        const std::string why = c->err ? c->errstr : "no reply";
        ctx_.reset();  // a context with an I/O error is unusable: start afresh next time
        throw RedisError("taskdist::redis: " + endpoint_.host + ":" + std::to_string(endpoint_.port) + ": " + why);
    }

    Endpoint endpoint_;
    std::unique_ptr<redisContext, Free> ctx_;
    std::string buffer_;
};

} // namespace taskdist::redis
