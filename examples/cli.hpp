// The examples' command lines: "--name value" pairs, each checked against its
// range, with one error message format. parse() throws cli::UsageError and
// never exits, so a fuzzer can drive it; main() turns the error into a
// message and exit status 2 through cli::run().
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Parser {
public:
    /// A whole number in [lo, hi].
    Parser& whole(std::string flag, long& out, long lo, long hi) {
        options_.push_back({std::move(flag), Kind::whole, &out, nullptr, nullptr, static_cast<double>(lo),
                            static_cast<double>(hi)});
        return *this;
    }
    /// A finite number in (lo, hi].
    Parser& real(std::string flag, double& out, double lo, double hi) {
        options_.push_back({std::move(flag), Kind::real, nullptr, &out, nullptr, lo, hi});
        return *this;
    }
    /// Any non-empty text.
    Parser& text(std::string flag, std::string& out) {
        options_.push_back({std::move(flag), Kind::text, nullptr, nullptr, &out, 0, 0});
        return *this;
    }

    /// "[--a N] [--b F] [--c TEXT]" for messages.
    std::string usage() const {
        std::string u;
        for (const Option& o : options_) {
            if (!u.empty()) u += ' ';
            u += "[" + o.flag + (o.kind == Kind::whole ? " N]" : o.kind == Kind::real ? " F]" : " TEXT]");
        }
        return u;
    }

    /// Sets the options named in args (argv without the program name).
    /// Throws UsageError naming the flag and what was wrong.
    void parse(const std::vector<std::string_view>& args) const {
        for (std::size_t i = 0; i < args.size(); i += 2) {
            const std::string_view flag = args[i];
            const Option* o = find(flag);
            if (!o) throw UsageError("unknown option '" + std::string(flag) + "'");
            if (i + 1 >= args.size()) throw UsageError(std::string(flag) + " needs a value");
            set(*o, args[i + 1]);
        }
    }

private:
    enum class Kind { whole, real, text };
    struct Option {
        std::string flag;
        Kind kind;
        long* whole_out;
        double* real_out;
        std::string* text_out;
        double lo, hi;
    };

    const Option* find(std::string_view flag) const {
        for (const Option& o : options_) {
            if (o.flag == flag) return &o;
        }
        return nullptr;
    }

    static std::string shortest(double d) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", d);
        return buf;
    }

    static void set(const Option& o, std::string_view v) {
        const char* first = v.data();
        const char* last = v.data() + v.size();
        switch (o.kind) {
            case Kind::whole: {
                long n = 0;
                auto [end, ec] = std::from_chars(first, last, n);
                if (ec != std::errc{} || end != last || v.empty() || static_cast<double>(n) < o.lo ||
                    static_cast<double>(n) > o.hi) {
                    throw UsageError(o.flag + " wants a whole number from " + std::to_string(static_cast<long>(o.lo)) +
                                     " to " + std::to_string(static_cast<long>(o.hi)) + ", got '" + std::string(v) +
                                     "'");
                }
                *o.whole_out = n;
                return;
            }
            case Kind::real: {
                double d = 0;
                auto [end, ec] = std::from_chars(first, last, d);
                if (ec != std::errc{} || end != last || v.empty() || !std::isfinite(d) || !(d > o.lo && d <= o.hi)) {
                    throw UsageError(o.flag + " wants a number above " + shortest(o.lo) + " and at most " +
                                     shortest(o.hi) + ", got '" + std::string(v) + "'");
                }
                *o.real_out = d;
                return;
            }
            case Kind::text:
                if (v.empty()) throw UsageError(o.flag + " wants a non-empty value");
                *o.text_out = std::string(v);
                return;
        }
    }

    std::vector<Option> options_;
};

/// Parses argv with `parser`, then runs `body`; a usage error prints
/// "<program>: <what> (usage: ...)" and returns 2.
template <class Body>
int run(const char* program, const Parser& parser, int argc, char** argv, Body&& body) {
    try {
        parser.parse(std::vector<std::string_view>(argv + 1, argv + argc));
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s (usage: %s)\n", program, e.what(), parser.usage().c_str());
        return 2;
    }
    return body();
}

} // namespace cli
