// Fuzz target: what taskdist::redis reads back from Redis, where any client
// of the server could have written it: the task envelope (a stream entry's
// fields), the reply record, the done record and the status name.
//
// Input: the first byte picks the reader by its low two bits, the rest is
// its input:
//   'd' (0)  detail::split_done: "<status>\n<body>"
//   'e' (1)  decode_envelope: parts split at "\x1e" (not at newlines: an
//            envelope holds them); the first is the queue name, the rest
//            the entry's flat field/value list. A part "\x01" is a nil
//            element, "\x02..." an integer, anything else a bulk string.
//            The list reaches decode_envelope as a real hiredis reply.
//   'r' (2)  parse_reply_record: "<status> <id length>\n<task id><body>"
//   's' (3)  parse_status
//
// Checks: decode_envelope throws DecodeError and nothing else, and what it
// accepts is well formed (id, reply list of this queue, timeout in range)
// and packs back to the bytes it was read from, which decode the same;
// envelope_address throws nothing, and names an accepted envelope's client;
// ReplyView's accessors fail with RedisError only; a reply or done record
// that reads is rebuilt from its parts, one that does not is truly
// malformed; status names and parse_status agree.
#include "support.hpp"

#include <taskdist/redis/client.hpp>
#include <taskdist/redis/protocol.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace tr = taskdist::redis;

constexpr std::array<tr::Status, 4> all_statuses = {tr::Status::ok, tr::Status::error, tr::Status::timeout,
                                                    tr::Status::dead};

/// An array reply made by hiredis's own parser, as a worker gets one.
tr::Reply make_array(const std::vector<std::string_view>& elements) {
    std::string resp = "*" + std::to_string(elements.size()) + "\r\n";
    for (std::string_view e : elements) {
        if (e == "\x01") {
            resp += "$-1\r\n";
        } else if (!e.empty() && e[0] == '\x02') {
            resp += ":" + std::to_string(e.size()) + "\r\n";
        } else {
            resp += "$" + std::to_string(e.size()) + "\r\n" + std::string(e) + "\r\n";
        }
    }
    redisReader* reader = redisReaderCreate();
    fuzz::expect(reader != nullptr, "redisReaderCreate failed");
    void* reply = nullptr;
    const bool ok = redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK &&
                    redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr;
    redisReaderFree(reader);
    if (!ok) fuzz::fail("hiredis did not read the array this target wrote", resp);
    return tr::Reply(static_cast<redisReply*>(reply));
}

/// Every accessor either fits the element's type or throws RedisError.
void check_accessors(const tr::ReplyView& list) {
    for (std::size_t i = 0; i <= list.size(); ++i) {
        try {
            const tr::ReplyView e = list[i];
            fuzz::expect(i < list.size(), "operator[] past the end did not throw");
            try {
                (void)e.str();
                fuzz::expect(e.type() == REDIS_REPLY_STRING, "str() read a non-string");
            } catch (const tr::RedisError&) {
                fuzz::expect(e.type() != REDIS_REPLY_STRING, "str() refused a string");
            }
            try {
                (void)e.integer();
                fuzz::expect(e.type() == REDIS_REPLY_INTEGER, "integer() read a non-integer");
            } catch (const tr::RedisError&) {
                fuzz::expect(e.type() != REDIS_REPLY_INTEGER, "integer() refused an integer");
            }
            fuzz::expect(e.size() == 0, "a scalar element has elements");
            bool refused = false;
            try {
                (void)e[0];
            } catch (const tr::RedisError&) {
                refused = true;
            }
            fuzz::expect(refused, "operator[] on a scalar did not throw");
        } catch (const tr::RedisError&) {
            fuzz::expect(i == list.size(), "operator[] refused an element in range");
        }
    }
}

bool same(const tr::Envelope& a, const tr::Envelope& b) {
    return a.task_id == b.task_id && a.reply == b.reply && a.timeout_ms == b.timeout_ms && a.body == b.body &&
           a.keep == b.keep;
}

void check_envelope(std::string_view input) {
    std::vector<std::string_view> lines = fuzz::split(input, '\x1e');
    const std::string_view queue = lines.empty() ? std::string_view() : lines.front();
    if (!lines.empty()) lines.erase(lines.begin());
    const tr::Keys keys(queue);
    const tr::Reply fields = make_array(lines);
    check_accessors(fields);

    tr::EnvelopeAddress to;
    try {
        to = tr::envelope_address(fields.view());
    } catch (const std::exception& err) {
        fuzz::fail("envelope_address threw", err.what());
    }
    tr::Envelope e;
    try {
        e = tr::decode_envelope(fields.view(), keys);
    } catch (const tr::DecodeError&) {
        return;  // the worker dead-letters it
    }
    const std::string reply_prefix = keys.prefix + "reply:";
    fuzz::expect(!e.task_id.empty(), "accepted an envelope without a task id");
    fuzz::expect(e.reply.size() > reply_prefix.size() && e.reply.compare(0, reply_prefix.size(), reply_prefix) == 0,
                 "accepted a reply key outside this queue", e.reply);
    fuzz::expect(e.timeout_ms >= 0 && e.timeout_ms <= tr::max_timeout_ms, "accepted a timeout out of range");

    fuzz::expect(to.task_id == e.task_id && to.reply == e.reply && to.keep == e.keep,
                 "envelope_address disagrees with an envelope that decoded");

    // Queued again, as a client writes an entry: the very bytes it was read from.
    const std::string packed = tr::pack_envelope(e.task_id, e.reply, e.timeout_ms, e.keep, e.body);
    fuzz::expect(packed == tr::field(fields.view(), tr::envelope_field).value_or(""),
                 "an envelope that decoded packs to other bytes");
    const tr::Reply requeued = make_array({tr::envelope_field, packed});
    tr::Envelope again;
    try {
        again = tr::decode_envelope(requeued.view(), keys);
    } catch (const tr::DecodeError& err) {
        fuzz::fail("an envelope that decoded does not decode once queued again", err.what());
    }
    fuzz::expect(same(e, again), "an envelope changed when queued again");
}

void check_reply_record(std::string_view input) {
    const tr::ReplyRecord r = tr::parse_reply_record(input);
    if (!r.status) {
        // No status: the status word is none we know, or the record is
        // unreadable, and then it has no parts (the client skips it).
        if (tr::parse_status(input.substr(0, input.find(' ')))) {
            fuzz::expect(r.task_id.empty() && r.body.empty(), "an unreadable record has parts", input);
        }
        return;
    }
    fuzz::expect(r.task_id.size() + r.body.size() < input.size(), "a record's parts outgrow it", input);
    const std::string name(tr::status_name(*r.status));
    fuzz::expect(input.substr(0, name.size() + 1) == name + " ", "the status read is not the record's", input);
    const std::string rebuilt =
        name + " " + std::to_string(r.task_id.size()) + "\n" + std::string(r.task_id) + std::string(r.body);
    const tr::ReplyRecord again = tr::parse_reply_record(rebuilt);
    fuzz::expect(again.status == r.status && again.task_id == r.task_id && again.body == r.body,
                 "a record rebuilt from its parts reads differently", input);
}

void check_done_record(std::string_view input) {
    const auto [status, body] = tr::detail::split_done(input);
    for (tr::Status s : all_statuses) {
        const std::string head = std::string(tr::status_name(s)) + "\n";
        if (input.substr(0, head.size()) == head) {
            fuzz::expect(status == s && body == input.substr(head.size()), "a well-formed done record read wrongly", input);
            return;
        }
    }
    fuzz::expect(status == tr::Status::error, "a malformed done record did not read as an error", input);
}

void check_status(std::string_view input) {
    const std::optional<tr::Status> s = tr::parse_status(input);
    for (tr::Status known : all_statuses) {
        fuzz::expect(tr::parse_status(tr::status_name(known)) == known, "a status name does not read back");
        if (tr::status_name(known) == input) {
            fuzz::expect(s == known, "a status name read as another", input);
            return;
        }
    }
    fuzz::expect(!s.has_value(), "a word that names no status read as one", input);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = fuzz::as_text(data, size);
    if (input.empty()) return 0;
    const std::string_view rest = input.substr(1);
    switch (static_cast<unsigned char>(input[0]) & 3) {
        case 0:
            check_done_record(rest);
            break;
        case 1:
            check_envelope(rest);
            break;
        case 2:
            check_reply_record(rest);
            break;
        default:
            check_status(rest);
            break;
    }
    return 0;
}
