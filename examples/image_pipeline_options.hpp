// image_pipeline's command line, in a header of its own so that fuzz/fuzz_cli.cpp
// drives the very option set the example parses.
#pragma once

#include "cli.hpp"

#include <string>

namespace image_pipeline {

struct Args {
    std::string input;
    std::string output = "images_out";
    double scale = 0.5;
    long radius = 2;
    long workers = 4;
    long count = 24;
};

inline cli::Parser parser(Args& a) {
    cli::Parser p;
    p.text("--input", a.input)
        .text("--output", a.output)
        .real("--scale", a.scale, 0.01, 4)
        .whole("--radius", a.radius, 0, 50)
        .whole("--workers", a.workers, 1, 256)
        .whole("--count", a.count, 1, 10000);
    return p;
}

} // namespace image_pipeline
