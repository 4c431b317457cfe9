// data_analysis: split a CSV file of sales into chunks of lines, analyse the
// chunks on a pool (parse, validate, aggregate), merge the partial results,
// and check them against a single-threaded pass over the same bytes.
//
//   data_analysis [--input FILE] [--rows N] [--chunk-rows N] [--workers N]
//
// Without --input it writes a CSV of N rows (default 400000) to sales.csv in
// the working directory first. Columns: date,region,product,quantity,unit_price.
// Malformed lines are counted, not fatal.
#include <taskdist/fmt.hpp>
#include <taskdist/taskdist.hpp>

#include "data_analysis_options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

using data_analysis::Args;
using data_analysis::parser;

// ---- the data --------------------------------------------------------------------

const char* const regions[] = {"north", "south", "east", "west", "central"};
const char* const products[] = {"widget", "gadget", "gizmo", "doohickey", "sprocket", "flange", "grommet"};

void write_sample(const std::string& path, long rows) {
    std::ofstream out(path);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> region(0, 4), product(0, 6), qty(1, 40), day(1, 28), month(1, 12);
    std::lognormal_distribution<double> price(2.5, 0.6);
    std::uniform_int_distribution<int> damage(0, 999);
    out << "date,region,product,quantity,unit_price\n";
    for (long i = 0; i < rows; ++i) {
        if (damage(rng) == 0) {
            out << "2026-13-xx,,broken line\n";  // real files have these
            continue;
        }
        out << fmt::format("2026-{:02}-{:02},{},{},{},{:.2f}\n", month(rng), day(rng), regions[region(rng)],
                           products[product(rng)], qty(rng), price(rng));
    }
}

// ---- the analysis ------------------------------------------------------------------

struct Totals {
    std::uint64_t rows = 0;
    std::uint64_t bad_rows = 0;
    double revenue = 0;
    std::map<std::string, double, std::less<>> revenue_by_region;
    std::map<std::string, std::uint64_t, std::less<>> units_by_product;
    std::map<int, double> revenue_by_month;
    double max_line = 0;

    void merge(const Totals& o) {
        rows += o.rows;
        bad_rows += o.bad_rows;
        revenue += o.revenue;
        for (const auto& [k, v] : o.revenue_by_region) revenue_by_region[k] += v;
        for (const auto& [k, v] : o.units_by_product) units_by_product[k] += v;
        for (const auto& [k, v] : o.revenue_by_month) revenue_by_month[k] += v;
        max_line = std::max(max_line, o.max_line);
    }
};

/// Splits one CSV line into exactly `n` fields; false if it has another count.
bool split(std::string_view line, std::string_view* fields, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const std::size_t comma = line.find(',');
        fields[i++] = line.substr(0, comma);
        if (comma == std::string_view::npos) break;
        line.remove_prefix(comma + 1);
    }
    return i == n && fields[n - 1].find(',') == std::string_view::npos;
}

template <class T>
bool number(std::string_view s, T& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

/// m[key] += v, allocating the key only the first time it is seen.
template <class Map, class V>
void add(Map& m, std::string_view key, V v) {
    auto it = m.find(key);
    if (it == m.end()) it = m.emplace(std::string(key), V{}).first;
    it->second += v;
}

Totals analyse(std::string_view text) {
    Totals t;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty()) continue;
        ++t.rows;
        std::string_view f[5];
        int month = 0;
        long qty = 0;
        double price = 0;
        if (!split(line, f, 5) || f[0].size() != 10 || !number(f[0].substr(5, 2), month) || month < 1 ||
            month > 12 || f[1].empty() || f[2].empty() || !number(f[3], qty) || qty <= 0 || !number(f[4], price) ||
            price < 0) {
            ++t.bad_rows;
            continue;
        }
        const double amount = static_cast<double>(qty) * price;
        t.revenue += amount;
        add(t.revenue_by_region, f[1], amount);
        add(t.units_by_product, f[2], static_cast<std::uint64_t>(qty));
        t.revenue_by_month[month] += amount;
        t.max_line = std::max(t.max_line, amount);
    }
    return t;
}

/// Chunks of whole lines, about `rows` lines each, as views into `text`.
std::vector<std::string_view> chunk_lines(std::string_view text, long rows) {
    std::vector<std::string_view> chunks;
    while (!text.empty()) {
        std::size_t end = 0;
        for (long n = 0; n < rows && end < text.size(); ++n) {
            const std::size_t nl = text.find('\n', end);
            end = nl == std::string_view::npos ? text.size() : nl + 1;
        }
        chunks.push_back(text.substr(0, end));
        text.remove_prefix(end);
    }
    return chunks;
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(a)); }

int analyse_file(Args& a) {
    if (a.input.empty()) {
        a.input = "sales.csv";
        write_sample(a.input, a.rows);
        fmt::print("wrote {} rows to {}\n", a.rows, a.input);
    }
    std::ifstream in(a.input, std::ios::binary);
    if (!in) {
        fmt::print(stderr, "data_analysis: cannot read '{}'\n", a.input);
        return 1;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string data = buffer.str();
    std::string_view body(data);
    if (body.rfind("date,", 0) == 0) body.remove_prefix(std::min(body.size(), body.find('\n') + 1));  // the header

    // Parallel: one task per chunk; each returns its partial totals.
    const auto t0 = Clock::now();
    taskdist::WorkerPool<std::string_view, Totals> pool([](std::string_view chunk) { return analyse(chunk); },
                                                        {.workers = static_cast<std::size_t>(a.workers), .name = "csv"});
    const std::vector<std::string_view> chunks = chunk_lines(body, a.chunk_rows);
    std::vector<taskdist::TaskHandle<Totals>> parts;
    for (std::string_view c : chunks) parts.push_back(pool.submit(c));
    Totals total;
    for (auto& p : parts) total.merge(p.get());
    const double parallel_s = std::chrono::duration<double>(Clock::now() - t0).count();

    // The same bytes in one pass, to check the merge and to compare times.
    const auto t1 = Clock::now();
    const Totals serial = analyse(body);
    const double serial_s = std::chrono::duration<double>(Clock::now() - t1).count();

    fmt::print("{}: {} rows ({} malformed) in {} chunks on {} workers: {:.1f} ms (one thread: {:.1f} ms, {:.2f}x)\n",
               a.input, total.rows, total.bad_rows, chunks.size(), a.workers, parallel_s * 1e3, serial_s * 1e3,
               serial_s / parallel_s);
    fmt::print("revenue {:.2f}, largest line {:.2f}\n", total.revenue, total.max_line);
    for (const auto& [region, v] : total.revenue_by_region) fmt::print("  {:<8} {:>14.2f}\n", region, v);
    std::vector<std::pair<std::uint64_t, std::string>> top;
    for (const auto& [product, units] : total.units_by_product) top.emplace_back(units, product);
    std::sort(top.rbegin(), top.rend());
    fmt::print("units by product:");
    for (const auto& [units, product] : top) fmt::print(" {} {}", product, units);
    fmt::print("\nbest month: ");
    auto best = std::max_element(total.revenue_by_month.begin(), total.revenue_by_month.end(),
                                 [](const auto& x, const auto& y) { return x.second < y.second; });
    if (best != total.revenue_by_month.end()) fmt::print("{:02} ({:.2f})", best->first, best->second);
    fmt::print("\n\n{:t}\n", pool.stats());

    const bool same = total.rows == serial.rows && total.bad_rows == serial.bad_rows &&
                      close(total.revenue, serial.revenue) && total.units_by_product == serial.units_by_product;
    fmt::print("parallel result {} the single-threaded one\n", same ? "matches" : "DIFFERS FROM");
    return same ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("data_analysis", parser(a), argc, argv, [&] { return analyse_file(a); });
}
