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

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
    /// A reply hiredis built with its own allocation functions.
    explicit Reply(redisReply* r) noexcept : ReplyView(r), owner_(r, &freeReplyObject) {}
    /// A reply that lies in `memory` (see detail::ReplyArena).
    Reply(const redisReply* r, std::shared_ptr<const void> memory) noexcept : ReplyView(r), owner_(std::move(memory)) {}
    /// The whole reply as a view (for code that takes either).
    ReplyView view() const noexcept { return *this; }

private:
    std::shared_ptr<const void> owner_;
};

namespace detail {

/// Where a connection's replies are built: hiredis' default functions make
/// every element with its own calloc (and its string with a malloc), and
/// freeReplyObject frees them one by one; an XREADGROUP reply has fifteen per
/// task. The replies of one round trip are built here instead, by bumping a
/// pointer, and freed together when the last of them goes.
class ReplyArena {
public:
    void* allocate(std::size_t n) {
        n = (n + 7) & ~std::size_t{7};  // redisReply wants 8; blocks come from new, aligned for anything
        if (n > left_) grow(n);
        void* p = at_;
        at_ += n;
        left_ -= n;
        return p;
    }

private:
    void grow(std::size_t n) {
        const std::size_t size = std::max(n, next_);
        next_ = std::min<std::size_t>(next_ * 2, 1 << 20);
        blocks_.emplace_back(new char[size]);  // not zeroed: every byte is written before it is read
        at_ = blocks_.back().get();
        left_ = size;
    }

    std::vector<std::unique_ptr<char[]>> blocks_;
    char* at_ = nullptr;
    std::size_t left_ = 0;
    std::size_t next_ = 16 << 10;
};

/// hiredis' reply-object hooks, building into the arena the reader's
/// privdata names (a connection sets it for each round trip). They are
/// called from hiredis' C code, so no exception may leave them: on failure
/// they return null, which hiredis reports as out of memory (a RedisError).
struct ArenaReplies {
    struct State {
        ReplyArena* arena = nullptr;
    };

    /// The most elements one array reply may announce. Its element pointers
    /// are allocated (and zeroed) when its header arrives, before any
    /// element does, so a header claiming two billion (which hiredis 0.14
    /// accepts) would take 16 GiB on the word of one line. 2^24 elements
    /// (128 MiB of pointers) is far past any reply taskdist asks for.
    static constexpr std::size_t max_elements = std::size_t{1} << 24;

    /// Runs `build`; null if it throws (the arena could not grow).
    template <class Build>
    static void* guarded(Build build) noexcept {
        try {
            return build();
        } catch (...) {
            return nullptr;
        }
    }

    static redisReply* make(const redisReadTask* task, int type) {
        ReplyArena& arena = *static_cast<State*>(task->privdata)->arena;
        auto* r = static_cast<redisReply*>(arena.allocate(sizeof(redisReply)));
        std::memset(static_cast<void*>(r), 0, sizeof(redisReply));
        r->type = type;
        if (task->parent) static_cast<redisReply*>(task->parent->obj)->element[task->idx] = r;
        return r;
    }

    static void* string(const redisReadTask* task, char* str, std::size_t len) noexcept {
        return guarded([&] {
            redisReply* r = make(task, task->type);
            auto* copy = static_cast<char*>(static_cast<State*>(task->privdata)->arena->allocate(len + 1));
            if (len > 0) std::memcpy(copy, str, len);
            copy[len] = '\0';
            r->str = copy;
            r->len = len;
            return r;
        });
    }

    // hiredis 0.14 passes the element count as int, 1.x as size_t.
#if defined(HIREDIS_MAJOR) && HIREDIS_MAJOR >= 1
    using ElementCount = std::size_t;
#else
    using ElementCount = int;
#endif
    static void* array(const redisReadTask* task, ElementCount elements) noexcept {
        const auto n = static_cast<std::size_t>(elements);
        if (n > max_elements) return nullptr;
        return guarded([&] {
            redisReply* r = make(task, task->type);
            if (n > 0) {
                r->element = static_cast<redisReply**>(static_cast<State*>(task->privdata)->arena->allocate(n * sizeof(redisReply*)));
                std::memset(static_cast<void*>(r->element), 0, n * sizeof(redisReply*));
            }
            r->elements = n;
            return r;
        });
    }

    static void* integer(const redisReadTask* task, long long value) noexcept {
        return guarded([&] {
            redisReply* r = make(task, REDIS_REPLY_INTEGER);
            r->integer = value;
            return r;
        });
    }

    static void* nil(const redisReadTask* task) noexcept {
        return guarded([&] { return make(task, REDIS_REPLY_NIL); });
    }

    // hiredis frees a reply it gave up on (a protocol error) this way: its
    // memory goes with the arena, when the round trip's owner drops it.
    static void forget(void*) {}

    static redisReplyObjectFunctions* functions() {
        static redisReplyObjectFunctions f = [] {
            redisReplyObjectFunctions x{};
            x.createString = &string;
            x.createArray = &array;
            x.createInteger = &integer;
            x.createNil = &nil;
            x.freeObject = &forget;
            return x;
        }();
        return &f;
    }
};

} // namespace detail

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
        try {
            auto arena = std::make_shared<detail::ReplyArena>();
            reader_->arena = arena.get();
            std::vector<Reply> replies;
            replies.reserve(count);
            for (std::size_t i = 0; i < count; ++i) {
                void* reply = nullptr;
                if (redisGetReply(c, &reply) != REDIS_OK || !reply) fail(c);
                replies.emplace_back(static_cast<const redisReply*>(reply), arena);
            }
            reader_->arena = nullptr;
            return replies;
        } catch (const RedisError&) {
            throw;
        } catch (const std::exception& e) {
            // Out of memory between replies: the rest of the round trip is
            // unread, so the connection cannot be used again.
            reader_->arena = nullptr;
            ctx_.reset();
            throw RedisError("taskdist::redis: " + endpoint_.host + ":" + std::to_string(endpoint_.port) +
                             ": reading replies: " + e.what());
        }
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
        c->reader->fn = detail::ArenaReplies::functions();
        c->reader->privdata = reader_.get();
        // Keep the read buffer however large it grew: hiredis frees and
        // regrows one over 16 KiB after each reply it empties, by default.
        c->reader->maxbuf = 0;
        ctx_ = std::move(c);
        if (!endpoint_.client_name.empty()) {
            const std::string name = detail::sanitize_client_name(endpoint_.client_name);
            std::string command;  // not buffer_: it may hold the command this connection is made for
            append_command(command, std::array<std::string_view, 3>{"CLIENT", "SETNAME", name});
            const Reply r = std::move(send(command, 1).front());
            if (r.is_error()) {
                ctx_.reset();
                throw RedisError("taskdist::redis: CLIENT SETNAME: " + std::string(r.str()));
            }
        }
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
        reader_->arena = nullptr;
        ctx_.reset();  // a context with an I/O error is unusable: start afresh next time
        throw RedisError("taskdist::redis: " + endpoint_.host + ":" + std::to_string(endpoint_.port) + ": " + why);
    }

    Endpoint endpoint_;
    std::unique_ptr<redisContext, Free> ctx_;
    std::string buffer_;
    // Where the reader's hooks find the round trip's arena; its own
    // allocation, so that it stays put when the Connection moves.
    std::unique_ptr<detail::ArenaReplies::State> reader_ = std::make_unique<detail::ArenaReplies::State>();
};

} // namespace taskdist::redis
