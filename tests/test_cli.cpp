// The examples' command-line parser (examples/cli.hpp): every bad input is a
// UsageError that names the flag, never a crash or a silent default.
#include "support.hpp"

#include "../examples/cli.hpp"
#include "../examples/demo_options.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace {

struct Settings {
    long count = 5;
    double scale = 1.0;
    std::string name = "default";
};

cli::Parser parser_for(Settings& s) {
    cli::Parser p;
    p.whole("--count", s.count, 1, 100).real("--scale", s.scale, 0, 4).text("--name", s.name);
    return p;
}

std::string error_of(const std::vector<std::string_view>& args) {
    Settings s;
    try {
        parser_for(s).parse(args);
    } catch (const cli::UsageError& e) {
        return e.what();
    }
    return "";
}

TEST_CASE("cli::Parser sets what is given and leaves the rest at their defaults") {
    Settings s;
    parser_for(s).parse({"--scale", "0.25", "--count", "100"});
    CHECK(s.count == 100);
    CHECK(s.scale == 0.25);
    CHECK(s.name == "default");
    parser_for(s).parse({});
    CHECK(s.count == 100);
    CHECK(parser_for(s).usage() == "[--count N] [--scale F] [--name TEXT]");
}

TEST_CASE("cli::Parser refuses bad input with a UsageError that names the flag") {
    CHECK(error_of({"--size", "3"}) == "unknown option '--size'");
    CHECK(error_of({"--count"}) == "--count needs a value");
    CHECK(error_of({"--count", "0"}).find("--count wants a whole number from 1 to 100") == 0);
    CHECK(error_of({"--count", "101"}).find("got '101'") != std::string::npos);
    CHECK(error_of({"--count", "12x"}).find("got '12x'") != std::string::npos);
    CHECK(error_of({"--count", ""}).find("--count wants") == 0);
    CHECK(error_of({"--count", "99999999999999999999999"}).find("--count wants") == 0);
    CHECK(error_of({"--count", "-5"}).find("--count wants") == 0);
    for (const char* bad : {"0", "-1", "4.5", "nan", "inf", "1e400", "0x", ""}) {
        CAPTURE(bad);
        CHECK(error_of({"--scale", bad}).find("--scale wants a number above 0 and at most 4") == 0);
    }
    CHECK(error_of({"--name", ""}) == "--name wants a non-empty value");
    CHECK(error_of({"--count", "3", "stray"}) == "unknown option 'stray'");
}

std::string demo_error_of(const std::vector<std::string_view>& args) {
    try {
        demo::parse_options(args);
    } catch (const cli::UsageError& e) {
        return e.what();
    }
    return "";
}

TEST_CASE("The demo's options take a bare --quiet and range-checked counts") {
    const demo::Options o = demo::parse_options({"--quiet", "--requests", "1000000", "--workers", "1"});
    CHECK(o.quiet);
    CHECK(o.requests == 1'000'000);
    CHECK(o.workers == 1);
    const demo::Options d = demo::parse_options({});
    CHECK_FALSE(d.quiet);
    CHECK(d.requests == 3000);
    CHECK(demo_error_of({"--workers", "257"}) == "--workers wants a whole number from 1 to 256, got '257'");
    CHECK(demo_error_of({"--requests", "0"}).find("--requests wants") == 0);
    CHECK(demo_error_of({"--requests", "-1"}).find("got '-1'") != std::string::npos);
    CHECK(demo_error_of({"--requests", "99999999999999999999999"}).find("--requests wants") == 0);
    CHECK(demo_error_of({"--requests"}) == "--requests wants a whole number from 1 to 1000000, got ''");
    CHECK(demo_error_of({"--workers", "--quiet"}).find("got '--quiet'") != std::string::npos);
    CHECK(demo_error_of({"--loud"}) == "unknown option '--loud'");
}

} // namespace
