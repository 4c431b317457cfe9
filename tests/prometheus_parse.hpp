// A strict reader of the Prometheus text exposition format, for tests: it
// checks what a scraper relies on and returns the samples, or says what was
// wrong.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace test_support {

struct PromSample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct PromParse {
    std::vector<PromSample> samples;
    std::map<std::string, std::string> types;  ///< family -> counter / gauge / histogram
    std::string error;                          ///< empty when the text is valid

    /// The one sample with this name and (a superset of) these labels.
    std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& want = {}) const {
        std::optional<double> found;
        for (const auto& s : samples) {
            if (s.name != name) continue;
            bool match = true;
            for (const auto& [k, v] : want) {
                auto it = s.labels.find(k);
                if (it == s.labels.end() || it->second != v) match = false;
            }
            if (!match) continue;
            if (found) return std::nullopt;  // ambiguous
            found = s.value;
        }
        return found;
    }
};

inline bool prom_name_ok(const std::string& n) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                        (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/// Parses `text`; on the first problem, sets `error` (with the line) and stops.
inline PromParse parse_prometheus(const std::string& text) {
    PromParse out;
    std::set<std::string> helped;
    std::istringstream in(text);
    std::string line;
    int number = 0;
    auto fail = [&](const std::string& why) {
        out.error = "line " + std::to_string(number) + ": " + why + ": '" + line + "'";
    };
    auto family_of = [&](const std::string& name) -> std::string {
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            const std::string s(suffix);
            if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
                std::string base = name.substr(0, name.size() - s.size());
                auto it = out.types.find(base);
                if (it != out.types.end() && it->second == "histogram") return base;
            }
        }
        return name;
    };
    if (!text.empty() && text.back() != '\n') {
        out.error = "the text does not end with a newline";
        return out;
    }
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::istringstream h(line);
            std::string hash, kind, name;
            h >> hash >> kind >> name;
            if (kind == "HELP") {
                if (!prom_name_ok(name)) return fail("bad metric name in HELP"), out;
                helped.insert(name);
            } else if (kind == "TYPE") {
                std::string type;
                h >> type;
                if (!prom_name_ok(name)) return fail("bad metric name in TYPE"), out;
                if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
                    type != "untyped") {
                    return fail("unknown type"), out;
                }
                if (out.types.count(name)) return fail("a second TYPE for one family"), out;
                out.types[name] = type;
            }
            continue;
        }
        PromSample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        if (!prom_name_ok(s.name)) return fail("bad sample name"), out;
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                std::size_t eq = line.find('=', i);
                if (eq == std::string::npos) return fail("label without '='"), out;
                const std::string key = line.substr(i, eq - i);
                if (!prom_name_ok(key)) return fail("bad label name"), out;
                if (eq + 1 >= line.size() || line[eq + 1] != '"') return fail("label value not quoted"), out;
                std::string value;
                std::size_t j = eq + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\') {
                        if (++j >= line.size()) return fail("dangling escape"), out;
                        if (line[j] == 'n') {
                            value += '\n';
                        } else if (line[j] == '\\' || line[j] == '"') {
                            value += line[j];
                        } else {
                            return fail("unknown escape"), out;
                        }
                    } else {
                        value += line[j];
                    }
                }
                if (j >= line.size()) return fail("unterminated label value"), out;
                if (s.labels.count(key)) return fail("a label given twice"), out;
                s.labels[key] = value;
                i = j + 1;
                if (i < line.size() && line[i] == ',') ++i;
            }
            if (i >= line.size()) return fail("unterminated label set"), out;
            ++i;
        }
        if (i >= line.size() || line[i] != ' ') return fail("no space before the value"), out;
        const std::string v = line.substr(i + 1);
        if (v == "+Inf" || v == "-Inf" || v == "NaN") {
            s.value = v == "NaN" ? 0.0 / 1.0 : (v[0] == '+' ? 1e308 : -1e308);
        } else {
            std::size_t used = 0;
            try {
                s.value = std::stod(v, &used);
            } catch (...) {
                return fail("value is not a number"), out;
            }
            if (used != v.size()) return fail("trailing text after the value"), out;
        }
        const std::string family = family_of(s.name);
        if (!out.types.count(family)) return fail("sample before its family's TYPE"), out;
        if (!helped.count(family)) return fail("sample without its family's HELP"), out;
        if (out.types[family] == "counter" && s.value < 0) return fail("negative counter"), out;
        out.samples.push_back(std::move(s));
    }
    return out;
}

} // namespace test_support
