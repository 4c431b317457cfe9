// The demo's command line, apart from the demo so that fuzz/fuzz_cli.cpp can
// drive it. "--quiet" takes no value, which cli::Parser's "--name value"
// pairs cannot express, hence a parser of its own; its errors are
// cli::UsageError all the same, so that main() and the fuzzer treat both
// kinds alike.
#pragma once

#include "cli.hpp"

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace demo {

inline constexpr std::size_t max_requests = 1'000'000;
inline constexpr std::size_t max_workers = 256;
inline constexpr const char* usage = "demo [--requests N] [--workers N] [--quiet]";

struct Options {
    std::size_t requests = 3000;
    std::size_t workers = 4;
    bool quiet = false;
};

/// A count in [1, max]; throws cli::UsageError naming the flag.
inline std::size_t parse_count(std::string_view flag, const std::string_view* text, std::size_t max) {
    unsigned long long v = 0;
    bool ok = text && !text->empty();
    if (ok) {
        const char* last = text->data() + text->size();
        auto [end, ec] = std::from_chars(text->data(), last, v);
        ok = ec == std::errc{} && end == last && v != 0 && v <= max;
    }
    if (!ok) {
        throw cli::UsageError(std::string(flag) + " wants a whole number from 1 to " + std::to_string(max) + ", got '" +
                              (text ? std::string(*text) : std::string()) + "'");
    }
    return static_cast<std::size_t>(v);
}

/// Reads args (argv without the program name); throws cli::UsageError.
inline Options parse_options(const std::vector<std::string_view>& args) {
    Options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view* value = i + 1 < args.size() ? &args[i + 1] : nullptr;
        if (args[i] == "--requests") {
            o.requests = parse_count(args[i], value, max_requests);
            ++i;
        } else if (args[i] == "--workers") {
            o.workers = parse_count(args[i], value, max_workers);
            ++i;
        } else if (args[i] == "--quiet") {
            o.quiet = true;
        } else {
            throw cli::UsageError("unknown option '" + std::string(args[i]) + "'");
        }
    }
    return o;
}

} // namespace demo
