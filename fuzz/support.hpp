// What the fuzz targets share: turning bytes into words, and failing loudly.
// A failed check aborts, so that libFuzzer records the input as a crash and
// a replay run (replay_main.cpp) fails its CTest test.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    // libFuzzer may pass a null pointer with size 0, which string_view accepts.
    return {reinterpret_cast<const char*>(data), size};
}

/// Splits on `sep`; a final empty piece is dropped, so that a hand-written
/// corpus file may end with a newline.
inline std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start < s.size()) {
        const std::size_t end = s.find(sep, start);
        if (end == std::string_view::npos) {
            out.push_back(s.substr(start));
            break;
        }
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

/// Bytes as C-style escapes: fuzz inputs are mostly not printable.
inline std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

[[noreturn]] inline void fail(std::string_view check, std::string_view detail = {}) {
    std::fprintf(stderr, "fuzz check failed: %.*s [%s]\n", static_cast<int>(check.size()), check.data(),
                 printable(detail).c_str());
    std::abort();
}

inline void expect(bool ok, std::string_view check, std::string_view detail = {}) {
    if (!ok) fail(check, detail);
}

} // namespace fuzz
