// redis_client's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace redis_client {

struct Args {
    std::string host = "127.0.0.1";
    long port = 6379;
    std::string queue = "demo";
    long jobs = 30;
    std::string batch = "batch1";
    long wait_s = 120;
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.text("--host", a.host)
        .whole("--port", a.port, 1, 65535)
        .text("--queue", a.queue)
        .whole("--jobs", a.jobs, 1, 1'000'000)
        .text("--batch", a.batch)
        .whole("--wait-s", a.wait_s, 1, 86'400);
    return p;
}

} // namespace redis_client
