// data_analysis's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace data_analysis {

struct Args {
    std::string input;
    long rows = 400'000;
    long chunk_rows = 20'000;
    long workers = 4;
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.text("--input", a.input)
        .whole("--rows", a.rows, 1, 100'000'000)
        .whole("--chunk-rows", a.chunk_rows, 1, 100'000'000)
        .whole("--workers", a.workers, 1, 256);
    return p;
}

} // namespace data_analysis
