// Fuzz target: the command lines of the demo and of every example that uses
// examples/cli.hpp, each with the option set its main() declares.
//
// Input: argv words (program name left out), one per line or NUL-ended.
// Every input goes through all of the parsers.
//
// Checks: a UsageError is the only exception; its message names the option
// at fault (or says it is unknown); a command line that parses has a value
// for every flag, and every flag is one the parser lists in usage(); the
// demo's counts are in range.
#include "support.hpp"

#include "data_analysis_options.hpp"
#include "demo_options.hpp"
#include "image_pipeline_options.hpp"
#include "metrics_server_options.hpp"
#include "redis_client_options.hpp"
#include "redis_worker_options.hpp"
#include "request_router_options.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Words = std::vector<std::string_view>;

/// The message should start with a word of the command line (the flag at
/// fault) or say which word is unknown, so that a user can find it.
void check_message(std::string_view what, const Words& words) {
    constexpr std::string_view unknown = "unknown option '";
    if (what.substr(0, unknown.size()) == unknown) {
        for (std::string_view w : words) {
            if (what == std::string(unknown) + std::string(w) + "'") return;
        }
        fuzz::fail("a UsageError names an unknown option that is not on the command line", what);
    }
    for (std::string_view w : words) {
        if (!w.empty() && what.substr(0, w.size()) == w) return;
    }
    fuzz::fail("a UsageError does not start with the flag at fault", what);
}

template <class Args>
void check_example(cli::Parser (*declare)(Args&), const Words& words) {
    Args args;
    const cli::Parser parser = declare(args);
    const std::string usage = parser.usage();
    try {
        parser.parse(words);
    } catch (const cli::UsageError& e) {
        check_message(e.what(), words);
        return;
    }
    fuzz::expect(words.size() % 2 == 0, "a flag without its value was accepted");
    for (std::size_t i = 0; i < words.size(); i += 2) {
        fuzz::expect(usage.find("[" + std::string(words[i]) + " ") != std::string::npos,
                     "a flag that usage() does not list was accepted", words[i]);
    }
}

void check_demo(const Words& words) {
    demo::Options o;
    try {
        o = demo::parse_options(words);
    } catch (const cli::UsageError& e) {
        check_message(e.what(), words);
        return;
    }
    fuzz::expect(o.requests >= 1 && o.requests <= demo::max_requests, "demo: --requests out of range");
    fuzz::expect(o.workers >= 1 && o.workers <= demo::max_workers, "demo: --workers out of range");
    bool quiet_given = false;
    for (std::string_view w : words) quiet_given = quiet_given || w == "--quiet";
    // A "--quiet" that parsed was a flag: a count would have refused it.
    fuzz::expect(o.quiet == quiet_given, "demo: --quiet read wrongly");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // An argv word ends at a NUL, so a NUL separates words too (and keeps
    // the check on what() from reading a message cut short at one).
    std::string text(fuzz::as_text(data, size));
    std::replace(text.begin(), text.end(), '\0', '\n');
    const Words words = fuzz::split(text, '\n');
    check_example(&data_analysis::parser, words);
    check_example(&image_pipeline::parser, words);
    check_example(&metrics_server::parser, words);
    check_example(&redis_client::parser, words);
    check_example(&redis_worker::parser, words);
    check_example(&request_router::parser, words);
    check_demo(words);
    return 0;
}
