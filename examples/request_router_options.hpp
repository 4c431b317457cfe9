// request_router's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace request_router {

struct Args {
    long users = 2000;
    long requests = 40000;
    long workers = 4;
    long cache = 400;  ///< sessions each worker keeps
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.whole("--users", a.users, 1, 10'000'000)
        .whole("--requests", a.requests, 1, 10'000'000)
        .whole("--workers", a.workers, 1, 256)
        .whole("--cache", a.cache, 1, 10'000'000);
    return p;
}

} // namespace request_router
