// The examples' command-line parser (examples/cli.hpp): every bad input is a
// UsageError that names the flag, never a crash or a silent default.
#include "support.hpp"

#include "../examples/cli.hpp"

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

} // namespace
