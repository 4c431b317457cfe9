// taskdist::redis: the wire protocol shared by clients and workers: key
// names, the task envelope, the reply record, and the server-side scripts
// that make each step atomic.
//
// For a queue named Q every key starts with "taskdist:{Q}:" (the braces keep
// a queue's keys in one Redis Cluster slot, which its scripts need):
//   tasks:<p>      a stream per priority level p (higher is read first),
//                  consumer group "workers"
//   dead           the dead-letter stream: entry, reason, original fields
//   id:<task id>   idempotency record: the entry a task id was queued as
//   done:<task id> the first result, for duplicates submitted later
//   waiters:<task id> reply lists of duplicates submitted while it runs
// The last three exist only for tasks submitted with an id of the caller's
// (the envelope's keep flag): a generated id is never submitted twice, and
// the ownership check at completion already lets one result through.
//   reply:<client> each client's reply list: one record per result,
//                  "<status> <id length>\n<task id><body>" (a list, not a
//                  stream: one reader, so RPUSH, LRANGE and LTRIM do the job
//                  for less server time than XADD/XREAD/XTRIM)
// A task's stream entry has one field, "t", holding the whole envelope:
//   "<format version> <id length> <reply length> <timeout ms> <keep>\n<task id><reply list><body>"
// with each number in its shortest decimal form, so that an envelope packs
// back to the bytes it was read from (one field, not one per part: the
// server's time per entry grows with its field count, in XADD, in
// XREADGROUP and in the reply it writes).
#pragma once

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec.hpp"
#include "connection.hpp"

namespace taskdist::redis {

/// The envelope's format version; a worker dead-letters any other.
/// Version 1 spread the envelope over six fields (v, id, reply, timeout,
/// keep, body).
inline constexpr std::string_view format_version = "2";
/// The one field of a task's stream entry.
inline constexpr std::string_view envelope_field = "t";
inline constexpr std::string_view group_name = "workers";

struct Keys {
    explicit Keys(std::string_view queue) : prefix("taskdist:{" + std::string(queue) + "}:") {}
    std::string prefix;
    std::string stream(int priority) const { return prefix + "tasks:" + std::to_string(priority); }
    std::string dead() const { return prefix + "dead"; }
    std::string idempotency(std::string_view task_id) const { return prefix + "id:" + std::string(task_id); }
    std::string done(std::string_view task_id) const { return prefix + "done:" + std::string(task_id); }
    std::string waiters(std::string_view task_id) const { return prefix + "waiters:" + std::string(task_id); }
    std::string reply(std::string_view client) const { return prefix + "reply:" + std::string(client); }
    /// Whether `key` names one of this queue's reply lists (results are
    /// written only there, never to a key a message names at will).
    bool is_reply_list(std::string_view key) const {
        constexpr std::string_view list = "reply:";
        return key.size() > prefix.size() + list.size() && key.starts_with(prefix) &&
               key.substr(prefix.size(), list.size()) == list;
    }
};

/// A queued task as it travels: the parts of its entry's envelope.
struct Envelope {
    std::string task_id;
    std::string reply;  ///< the submitting client's reply list
    std::int64_t timeout_ms = 0;
    std::string body;   ///< Codec<Task>::encode(task)
    bool keep = true;   ///< the caller chose the id: results are recorded for duplicates
};

/// How a task ended, as the reply says.
enum class Status { ok, error, timeout, dead };

inline std::string_view status_name(Status s) {
    switch (s) {
        case Status::ok:
            return "ok";
        case Status::error:
            return "error";
        case Status::timeout:
            return "timeout";
        case Status::dead:
            return "dead";
    }
    return "error";
}

inline std::optional<Status> parse_status(std::string_view s) {
    if (s == "ok") return Status::ok;
    if (s == "error") return Status::error;
    if (s == "timeout") return Status::timeout;
    if (s == "dead") return Status::dead;
    return std::nullopt;
}

/// The value of `field` in a stream entry's flat [k1, v1, k2, v2, ...] list.
template <class Fields>
std::optional<std::string_view> field(const Fields& fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].type() == REDIS_REPLY_STRING && fields[i].str() == name && fields[i + 1].type() == REDIS_REPLY_STRING) {
            return fields[i + 1].str();
        }
    }
    return std::nullopt;
}

/// Longest run-time limit an envelope may carry (a year): more is a corrupt
/// message, and would overflow when turned into nanoseconds.
inline constexpr std::int64_t max_timeout_ms = 366LL * 24 * 3600 * 1000;

/// An envelope whose strings are views of the entry's fields (valid while
/// they are): what a worker holds for each task, without copying them.
struct EnvelopeView {
    std::string_view task_id;
    std::string_view reply;
    std::int64_t timeout_ms = 0;
    std::string_view body;
    bool keep = true;
};

/// The value of a task entry's envelope field, as view_envelope reads it.
inline std::string pack_envelope(std::string_view task_id, std::string_view reply, std::int64_t timeout_ms, bool keep,
                                 std::string_view body) {
    std::string out;
    out.reserve(64 + task_id.size() + reply.size() + body.size());  // 64: the header's numbers
    const auto put = [&out](auto n) {
        char digits[24];  // any 64-bit number
        out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr).push_back(' ');
    };
    out.append(format_version).push_back(' ');
    put(task_id.size());
    put(reply.size());
    put(timeout_ms);
    out.append(1, keep ? '1' : '0').append(1, '\n').append(task_id).append(reply).append(body);
    return out;
}

namespace detail {

/// Outside bytes quoted in an error message, at most 64 of them: the reason
/// goes to the dead-letter stream and to the client.
inline std::string quoted(std::string_view s) {
    return "'" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'");
}

/// Splits an envelope value into its parts, checking only its layout (not
/// the reply list or the timeout's range); throws DecodeError.
inline EnvelopeView split_envelope(std::string_view packed) {
    const std::size_t space = packed.find(' ');
    if (space == std::string_view::npos) throw DecodeError("no format version in the envelope");
    if (packed.substr(0, space) != format_version) {
        throw DecodeError("format version " + quoted(packed.substr(0, space)) + ", this worker reads '" +
                          std::string(format_version) + "'");
    }
    const std::size_t nl = packed.find('\n', space);
    if (nl == std::string_view::npos) throw DecodeError("no end to the envelope's header");
    const std::string_view head = packed.substr(space + 1, nl - space - 1);
    const char* at = head.data();
    const char* const end = head.data() + head.size();
    // Each number is digits then a space (from_chars alone would take a
    // sign), without leading zeros (pack_envelope writes none).
    const auto number = [&](auto& n, const char* what) {
        const auto [stop, ec] = std::from_chars(at, end, n);
        if (ec != std::errc{} || at == end || *at == '-' || (*at == '0' && stop - at > 1) || stop == end || *stop != ' ') {
            throw DecodeError("bad " + std::string(what) + " in the envelope's header " + quoted(head));
        }
        at = stop + 1;
    };
    std::size_t id_len = 0, reply_len = 0;
    EnvelopeView e;
    number(id_len, "id length");
    number(reply_len, "reply length");
    number(e.timeout_ms, "timeout");
    if (end - at != 1 || (*at != '0' && *at != '1')) {
        throw DecodeError("bad keep flag in the envelope's header " + quoted(head));
    }
    e.keep = *at == '1';
    const std::string_view rest = packed.substr(nl + 1);
    if (id_len > rest.size() || reply_len > rest.size() - id_len) {
        throw DecodeError("the envelope's header " + quoted(head) + " claims more than its " + std::to_string(rest.size()) +
                          " bytes");
    }
    e.task_id = rest.substr(0, id_len);
    e.reply = rest.substr(id_len, reply_len);
    e.body = rest.substr(id_len + reply_len);
    return e;
}

} // namespace detail

/// Reads the envelope out of a task entry's fields; throws DecodeError
/// saying what is wrong. Of a field given twice, the first counts (as
/// field() reads it).
template <class Fields>
EnvelopeView view_envelope(const Fields& fields, const Keys& keys) {
    const std::optional<std::string_view> packed = field(fields, envelope_field);
    if (!packed) {
        // Format 1 named its version in a field of its own.
        if (const auto v = field(fields, "v")) {
            throw DecodeError("format version " + detail::quoted(*v) + " (in a field 'v'), this worker reads '" +
                              std::string(format_version) + "' (in a field '" + std::string(envelope_field) + "')");
        }
        throw DecodeError("no format version: no envelope field '" + std::string(envelope_field) + "'");
    }
    const EnvelopeView e = detail::split_envelope(*packed);
    if (e.task_id.empty()) throw DecodeError("no task id");
    // A key of another type would fail the complete script.
    if (!keys.is_reply_list(e.reply)) throw DecodeError("reply key " + detail::quoted(e.reply) + " is not one of this queue's");
    if (e.timeout_ms < 0 || e.timeout_ms > max_timeout_ms) {
        throw DecodeError("bad timeout '" + std::to_string(e.timeout_ms) + "'");
    }
    return e;
}

/// Whom to tell that an entry was dead-lettered: its task id, reply list
/// and keep flag, read from whatever part of the envelope is readable (a
/// format 1 entry's own fields too, so that its client hears of it); an
/// empty id or reply when there is none.
struct EnvelopeAddress {
    std::string task_id;
    std::string reply;
    bool keep = true;
};

template <class Fields>
EnvelopeAddress envelope_address(const Fields& fields) {
    EnvelopeAddress a;
    if (const auto packed = field(fields, envelope_field)) {
        try {
            const EnvelopeView e = detail::split_envelope(*packed);
            a.task_id = std::string(e.task_id);
            a.reply = std::string(e.reply);
            a.keep = e.keep;
        } catch (const DecodeError&) {
            // Not even the layout reads: nobody can be told.
        }
        return a;
    }
    if (const auto id = field(fields, "id")) a.task_id = std::string(*id);
    if (const auto reply = field(fields, "reply")) a.reply = std::string(*reply);
    if (const auto keep = field(fields, "keep")) a.keep = *keep != "0";
    return a;
}

/// As view_envelope, the strings copied.
template <class Fields>
Envelope decode_envelope(const Fields& fields, const Keys& keys) {
    const EnvelopeView v = view_envelope(fields, keys);
    Envelope e;
    e.task_id = std::string(v.task_id);
    e.reply = std::string(v.reply);
    e.timeout_ms = v.timeout_ms;
    e.body = std::string(v.body);
    e.keep = v.keep;
    return e;
}

/// One result as the reply list holds it.
struct ReplyRecord {
    std::string_view task_id;
    std::optional<Status> status;  ///< empty: unreadable
    std::string_view body;
};

/// Reads "<status> <id length>\n<task id><body>"; an unreadable record has
/// no status.
inline ReplyRecord parse_reply_record(std::string_view r) {
    ReplyRecord out;
    const std::size_t space = r.find(' ');
    const std::size_t nl = r.find('\n');
    if (space == std::string_view::npos || nl == std::string_view::npos || space > nl) return out;
    std::size_t len = 0;
    auto [end, ec] = std::from_chars(r.data() + space + 1, r.data() + nl, len);
    if (ec != std::errc{} || end != r.data() + nl || len > r.size() - nl - 1) return out;
    out.task_id = r.substr(nl + 1, len);
    out.body = r.substr(nl + 1 + len);
    out.status = parse_status(r.substr(0, space));
    return out;
}

/// Writes "<status> <id length>\n<task id><body>", as parse_reply_record reads it.
inline std::string reply_record(Status status, std::string_view task_id, std::string_view body) {
    const std::string_view name = status_name(status);
    char len[24];
    const auto [end, ec] = std::to_chars(len, len + sizeof len, task_id.size());
    (void)ec;  // 24 characters hold any size_t
    std::string out;
    out.reserve(name.size() + 2 + static_cast<std::size_t>(end - len) + task_id.size() + body.size());
    out.append(name).append(1, ' ').append(len, end).append(1, '\n').append(task_id).append(body);
    return out;
}

namespace scripts {

/// A Lua script run by its SHA1 digest (EVALSHA): its text crosses the wire
/// and is hashed by the server once, not on every call (the complete script
/// is called every few milliseconds under load). The digest comes from
/// SCRIPT LOAD on first use; a server that does not know it (restarted, or
/// SCRIPT FLUSH) answers NOSCRIPT without running anything, and the script
/// is loaded and the call made again.
class Script {
public:
    explicit Script(std::string text) : text_(std::move(text)) {}
    Script(const Script&) = delete;
    Script& operator=(const Script&) = delete;

    std::string_view text() const noexcept { return text_; }

    /// Runs the script; `args` are numkeys, the keys, then the arguments.
    /// Throws RedisError as Connection::command does.
    Reply run(Connection& c, const std::vector<std::string_view>& args) const {
        std::string sha = digest(c);
        std::vector<std::string_view> argv;
        argv.reserve(args.size() + 2);
        argv.emplace_back("EVALSHA");
        argv.emplace_back(sha);
        argv.insert(argv.end(), args.begin(), args.end());
        Reply r = c.raw(argv);
        if (r.is_error() && r.str().starts_with("NOSCRIPT")) {
            sha = load(c);
            argv[1] = sha;
            r = c.raw(argv);
        }
        if (r.is_error()) throw RedisError("taskdist::redis: " + std::string(r.str()));
        return r;
    }

private:
    std::string digest(Connection& c) const {
        {
            std::lock_guard lock(mutex_);
            if (!sha_.empty()) return sha_;
        }
        return load(c);
    }

    std::string load(Connection& c) const {
        std::string sha(c.command({"SCRIPT", "LOAD", text_}).str());
        std::lock_guard lock(mutex_);
        sha_ = sha;
        return sha;
    }

    std::string text_;
    mutable std::mutex mutex_;  // the script is shared by every connection's thread
    mutable std::string sha_;
};

// Queues tasks, each unless its id was seen before (within the records'
// TTL). One call takes a batch: Lua calls cost more than the commands in them.
// KEYS: per task, its stream, idempotency, done and waiters keys. ARGV: ttl
// ms, reply list, then per task its id, envelope (the entry's one field) and
// keep ("1": a caller's id, recorded for idempotency; "0": generated, not
// recorded). Returns per task three values: 1 and the entry id when queued
// now; for a duplicate 0, the entry id it was queued as (or "" if only its
// result is left), and its done record (nil while it runs: this client's
// reply list then joins its waiters, and gets the result too).
// Tasks with generated ids need none of this: the client XADDs their
// entries itself, the same way, and no script runs per task.
inline const Script& submit() {
    static const Script s(R"lua(
local out = {}
for t = 0, #KEYS / 4 - 1 do
  local stream, idem, done, waiters = KEYS[4 * t + 1], KEYS[4 * t + 2], KEYS[4 * t + 3], KEYS[4 * t + 4]
  local id, envelope, keep = ARGV[3 * t + 3], ARGV[3 * t + 4], ARGV[3 * t + 5]
  local result, seen = false, false
  if keep == '1' then
    result = redis.call('GET', done)
    seen = redis.call('GET', idem)
  end
  if result then
    table.insert(out, 0); table.insert(out, seen or ''); table.insert(out, result)
  elseif seen then
    redis.call('SADD', waiters, ARGV[2])
    redis.call('PEXPIRE', waiters, ARGV[1])
    table.insert(out, 0); table.insert(out, seen); table.insert(out, false)
  else
    local entry = redis.call('XADD', stream, '*', 't', envelope)
    if keep == '1' then redis.call('SET', idem, entry, 'PX', ARGV[1]) end
    table.insert(out, 1); table.insert(out, entry); table.insert(out, false)
  end
end
return out
)lua");
    return s;
}

// The first result of a task with a caller's id, shared by the scripts that
// publish one (complete, dead_letter): the result is kept in the done key
// ("<status>\n<body>") unless one is there already, and then that earlier
// one is what is published; every waiter's reply list gets it (through
// push(list, record)), and the waiters are forgotten. Returns the record
// for the task's own reply list, and 1 (its own result) or 2 (an earlier one).
inline constexpr std::string_view settle_lua = R"lua(
local function record(status, id, body) return status .. ' ' .. #id .. '\n' .. id .. body end
local function settle(done, waiters, reply, id, status, body, ttl, push)
  local code = 1
  if not redis.call('SET', done, status .. '\n' .. body, 'NX', 'PX', ttl) then
    local kept = redis.call('GET', done)
    local nl = string.find(kept, '\n', 1, true)
    status, body, code = string.sub(kept, 1, nl - 1), string.sub(kept, nl + 1), 2
  end
  local rec = record(status, id, body)
  for _, r in ipairs(redis.call('SMEMBERS', waiters)) do
    if r ~= reply then push(r, rec) end
  end
  redis.call('DEL', waiters)
  return rec, code
end
)lua";

// Completes entries: each only while it is still pending for this consumer
// (a worker whose lease was taken over must not acknowledge the new owner's
// delivery; XACK alone would). Once acknowledged the entry is deleted, so no
// one else can complete it: one result per entry. For a task with a caller's
// id, the first result is the one every waiter gets (settle above).
//
// Per call, not per entry (each redis.call costs more than the work in it):
// one XPENDING per stream reads what this consumer holds between the batch's
// lowest and highest entry id (at most `bound` entries; if that many come
// back the range may go on, and an entry not among them is checked alone),
// one RPUSH per reply list, one XACK per stream and what deletes the
// entries (below). Entries come in
// runs sharing a stream and a reply list, so that each costs the script as
// few arguments as can be.
//
// KEYS: the streams, the reply lists, then per kept entry (below) its done
// and waiters keys. ARGV: group, consumer, ttl ms, bound, the number of
// streams, per stream its batch's lowest and highest entry id, then runs:
// "p" (generated ids) or "k" (a caller's ids, kept), the index in KEYS of the
// run's stream and of its reply list, the number of entries, then per entry
// for "p" its entry id and reply record, for "k" the index of its done key
// (its waiters key follows), entry id, task id, status and body. Returns per
// entry, in that order, 1 delivered its own result, 2 delivered an earlier
// result of the task, 0 not ours any more (dropped).
inline const Script& complete() {
    static const Script s(std::string(settle_lua) + R"lua(
local group, consumer, ttl, bound, nstreams = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local held, full, acks = {}, {}, {}
for s = 1, nstreams do
  local p = redis.call('XPENDING', KEYS[s], group, ARGV[4 + 2 * s], ARGV[5 + 2 * s], bound, consumer)
  local mine = {}
  for i = 1, #p do mine[p[i][1]] = true end
  held[s], full[s], acks[s] = mine, #p >= bound, {}
end
-- Takes the entry if this consumer holds it; once only, were it twice in the batch.
local function take(s, entry)
  local mine = held[s][entry]
  if mine == nil and full[s] then mine = #redis.call('XPENDING', KEYS[s], group, entry, entry, 1, consumer) > 0 end
  if not mine then return false end
  held[s][entry] = false
  local a = acks[s]
  a[#a + 1] = entry
  return true
end
local lists, order = {}, {}
local function list(r)
  local l = lists[r]
  if not l then l = {}; lists[r] = l; order[#order + 1] = r end
  return l
end
local function push(r, rec)
  local l = list(r)
  l[#l + 1] = rec
end
local out, n, a, last = {}, 0, 6 + 2 * nstreams, #ARGV
while a <= last do
  local kind, s, r, count = ARGV[a], tonumber(ARGV[a + 1]), KEYS[tonumber(ARGV[a + 2])], tonumber(ARGV[a + 3])
  a = a + 4
  if kind == 'p' then
    local l = list(r)
    for _ = 1, count do
      n = n + 1
      if take(s, ARGV[a]) then
        l[#l + 1] = ARGV[a + 1]
        out[n] = 1
      else
        out[n] = 0
      end
      a = a + 2
    end
  else
    for _ = 1, count do
      n = n + 1
      out[n] = 0
      local d = tonumber(ARGV[a])
      if take(s, ARGV[a + 1]) then
        local rec, code = settle(KEYS[d], KEYS[d + 1], r, ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ttl, push)
        push(r, rec)
        out[n] = code
      end
      a = a + 5
    end
  end
end
for _, r in ipairs(order) do
  if #lists[r] > 0 then redis.call('RPUSH', r, unpack(lists[r])) end
end
-- Whether entry id x is older than y ("<ms>-<seq>", compared as numbers of any size).
local function older(x, y)
  local i, j = string.find(x, '-', 1, true), string.find(y, '-', 1, true)
  if i ~= j then return i < j end
  local xm, ym = string.sub(x, 1, i - 1), string.sub(y, 1, j - 1)
  if xm ~= ym then return xm < ym end
  local xs, ys = string.sub(x, i + 1), string.sub(y, j + 1)
  if #xs ~= #ys then return #xs < #ys end
  return xs < ys
end
for s = 1, nstreams do
  local a = acks[s]
  if #a > 0 then
    redis.call('XACK', KEYS[s], group, unpack(a))
    -- Every entry older than the group's oldest pending one is acknowledged
    -- (and deleted, by the script that completed it), as is every entry
    -- older than this batch's newest when none is pending (all older ones
    -- were delivered). So this batch's entries there go with one XTRIM
    -- MINID, which drops whole nodes and walks the last one once, where XDEL
    -- looks each entry up and walks its node; the rest go with XDEL.
    local first = redis.call('XPENDING', KEYS[s], group, '-', '+', 1)
    local newest = ARGV[5 + 2 * s]
    local rest = {}
    if #first == 0 then
      redis.call('XTRIM', KEYS[s], 'MINID', newest)
      rest[1] = newest
    else
      local bound = first[1][1]
      local trim = older(newest, bound)
      if not trim then
        for i = 1, #a do
          if older(a[i], bound) then trim = true else rest[#rest + 1] = a[i] end
        end
      end
      if trim then redis.call('XTRIM', KEYS[s], 'MINID', bound) end
    end
    if #rest > 0 then redis.call('XDEL', KEYS[s], unpack(rest)) end
  end
end
return out
)lua");
    return s;
}

// Resets the idle time of the entries this consumer still holds, without
// counting a delivery (XCLAIM JUSTID). KEYS: stream. ARGV: group, consumer,
// entry ids. Returns how many were still held.
inline const Script& heartbeat() {
    static const Script s(R"lua(
local kept = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
)lua");
    return s;
}

// Moves an entry this consumer holds to the dead-letter stream, and tells the
// clients waiting for it, if the entry named them. KEYS: stream, dead stream,
// reply list or "", done key or "", waiters key or "". ARGV: group,
// consumer, entry id, reason, ttl ms, task id or "", keep ("0": a generated
// id, no result recorded), then the entry's original field/value pairs.
// Returns 1, or 0 if not ours.
inline const Script& dead_letter() {
    static const Script s(std::string(settle_lua) + R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'entry', ARGV[3], 'stream', KEYS[1], 'reason', ARGV[4], unpack(ARGV, 8))
local id = ARGV[6]
if KEYS[3] ~= '' then
  local rec = record('dead', id, ARGV[4])
  if ARGV[7] ~= '0' then
    rec = settle(KEYS[4], KEYS[5], KEYS[3], id, 'dead', ARGV[4], ARGV[5], function(r, x) redis.call('RPUSH', r, x) end)
  end
  redis.call('RPUSH', KEYS[3], rec)
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
)lua");
    return s;
}

// Hands an entry this consumer took but never started back to the group: a
// fresh entry with the same fields (its delivery count starts again, since
// it never ran), the old one acknowledged and deleted. KEYS: stream. ARGV:
// group, consumer, entry id, then the fields. Returns 1, or 0 if not ours.
inline const Script& hand_back() {
    static const Script s(R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
)lua");
    return s;
}

} // namespace scripts

/// "<host>-<pid>": a name for this process that its peers can read.
inline std::string process_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
    return std::string(host) + "-" + std::to_string(::getpid());
}

/// Creates the consumer group on every priority stream (and the streams),
/// ignoring "already exists".
inline void ensure_groups(Connection& c, const Keys& keys, int priorities) {
    for (int p = 0; p < priorities; ++p) {
        const std::string s = keys.stream(p);
        Reply r = c.raw({"XGROUP", "CREATE", s, group_name, "0", "MKSTREAM"});
        if (r.is_error() && r.str().find("BUSYGROUP") == std::string_view::npos) {
            throw RedisError("taskdist::redis: XGROUP CREATE " + s + ": " + std::string(r.str()));
        }
    }
}

} // namespace taskdist::redis
