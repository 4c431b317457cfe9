// Fuzz target: the bytes a Redis server, or anything listening where one
// should be, sends back, read the way every taskdist::redis::Connection
// reads them: hiredis' parser with taskdist's reply hooks
// (detail::ArenaReplies), which build each round trip's replies in an arena.
//
// Input: the first byte picks where the rest is cut in two (its value
// modulo the rest's length + 1); the parts are fed one after the other, as
// two reads from a socket would bring them, and every reply the reader
// completes is taken.
//
// Checks: nothing is thrown out of the reader (hiredis is C); once it
// reports an error it gives no more replies; every reply is a tree of the
// RESP2 types whose arrays have all their elements set and at most
// ArenaReplies::max_elements of them, whose strings end in a NUL at their
// length; ReplyView's accessors fit each node's type or throw RedisError.
#include "support.hpp"

#include <taskdist/redis/connection.hpp>

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace {

namespace tr = taskdist::redis;

void walk(const redisReply* r) {
    fuzz::expect(r != nullptr, "a reply or element is null");
    const tr::ReplyView v(r);
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        fuzz::expect(r->str != nullptr && r->str[r->len] == '\0', "a string without its NUL");
        fuzz::expect(v.str().size() == r->len, "str() has another length");
        break;
    case REDIS_REPLY_INTEGER:
        fuzz::expect(v.integer() == r->integer, "integer() reads another value");
        break;
    case REDIS_REPLY_NIL:
        fuzz::expect(v.is_nil(), "a nil that is_nil() denies");
        break;
    case REDIS_REPLY_ARRAY:
        fuzz::expect(r->elements <= tr::detail::ArenaReplies::max_elements, "an array over max_elements");
        fuzz::expect(v.size() == r->elements, "size() is not the element count");
        for (std::size_t i = 0; i < r->elements; ++i) walk(r->element[i]);
        break;
    default:
        fuzz::fail("a reply of an unknown type");
    }
    bool refused = false;
    try {
        (void)v.str();
    } catch (const tr::RedisError&) {
        refused = true;
    }
    fuzz::expect(refused == (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_ERROR),
                 "str() disagrees with the type");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view rest = fuzz::as_text(data + 1, size - 1);
    const std::size_t cut = data[0] % (rest.size() + 1);
    redisReader* reader = redisReaderCreateWithFunctions(tr::detail::ArenaReplies::functions());
    fuzz::expect(reader != nullptr, "redisReaderCreateWithFunctions failed");
    auto arena = std::make_shared<tr::detail::ReplyArena>();
    tr::detail::ArenaReplies::State state{arena.get()};
    reader->privdata = &state;
    std::vector<const redisReply*> replies;  // in the arena, which outlives them here
    bool failed = false;
    for (const std::string_view part : {rest.substr(0, cut), rest.substr(cut)}) {
        if (redisReaderFeed(reader, part.data(), part.size()) != REDIS_OK) failed = true;
        while (!failed) {
            void* reply = nullptr;
            if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
                failed = true;
            } else if (reply == nullptr) {
                break;
            } else {
                replies.push_back(static_cast<const redisReply*>(reply));
            }
        }
    }
    if (failed) {
        void* reply = nullptr;
        fuzz::expect(redisReaderGetReply(reader, &reply) != REDIS_OK || reply == nullptr, "a reply after an error");
    }
    redisReaderFree(reader);  // a half-built reply is dropped through ArenaReplies::forget: the arena holds it
    for (const redisReply* r : replies) walk(r);
    return 0;
}
