// redis_worker's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace redis_worker {

struct Args {
    std::string host = "127.0.0.1";
    long port = 6379;
    std::string queue = "demo";
    std::string name;
    long threads = 2;
    long work_ms = 300;
    long lease_ms = 3000;
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.text("--host", a.host)
        .whole("--port", a.port, 1, 65535)
        .text("--queue", a.queue)
        .text("--name", a.name)
        .whole("--threads", a.threads, 1, 256)
        .whole("--work-ms", a.work_ms, 0, 600'000)
        .whole("--lease-ms", a.lease_ms, 300, 3'600'000);  // heartbeat (lease / 3) + block (100 ms) within 2/3 of it
    return p;
}

} // namespace redis_worker
