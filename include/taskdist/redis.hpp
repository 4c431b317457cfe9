// taskdist::redis: the scale-out part. Worker processes on any number of
// machines share one queue through Redis Streams (consumer groups); a client
// in any process submits and gets the same TaskHandle as a local pool.
// Needs hiredis (Debian: libhiredis-dev); CMake target taskdist::redis.
#pragma once

#include "redis/client.hpp"
#include "redis/codec.hpp"
#include "redis/connection.hpp"
#include "redis/protocol.hpp"
#include "redis/worker.hpp"
