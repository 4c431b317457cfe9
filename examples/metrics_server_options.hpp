// metrics_server's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace metrics_server {

struct Args {
    long port = 9464;
    long tasks = 2000;
    long requests = 0;
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.whole("--port", a.port, 0, 65535)
        .whole("--tasks", a.tasks, 0, 100'000'000)
        .whole("--requests", a.requests, 0, 1'000'000'000);
    return p;
}

} // namespace metrics_server
