// image_pipeline: resize and blur every PNG in a folder in parallel, with a
// progress bar and a per-worker summary. Images are read and written with
// libpng; each is one task, and a file that cannot be read fails its own task
// without stopping the others.
//
//   image_pipeline [--input DIR] [--output DIR] [--scale F] [--radius N] [--workers N] [--count N]
//
// Without --input it first draws --count (default 24) test images into
// ./images_in. Output defaults to ./images_out.
#include <taskdist/fmt.hpp>
#include <taskdist/taskdist.hpp>

#include "image_pipeline_options.hpp"

#include <fmt/format.h>
#include <png.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using image_pipeline::Args;
using image_pipeline::parser;

// ---- images -----------------------------------------------------------------------

struct Image {
    std::uint32_t width = 0, height = 0;
    std::vector<std::uint8_t> rgba;  // 4 bytes a pixel, rows top to bottom
};

Image read_png(const fs::path& path) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path.c_str())) {
        throw std::runtime_error(fmt::format("{}: {}", path.string(), img.message));
    }
    img.format = PNG_FORMAT_RGBA;
    Image out{img.width, img.height, std::vector<std::uint8_t>(PNG_IMAGE_SIZE(img))};
    if (!png_image_finish_read(&img, nullptr, out.rgba.data(), 0, nullptr)) {
        const std::string why = img.message;
        png_image_free(&img);
        throw std::runtime_error(fmt::format("{}: {}", path.string(), why));
    }
    return out;
}

void write_png(const fs::path& path, const Image& image) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    img.width = image.width;
    img.height = image.height;
    img.format = PNG_FORMAT_RGBA;
    if (!png_image_write_to_file(&img, path.c_str(), 0, image.rgba.data(), 0, nullptr)) {
        throw std::runtime_error(fmt::format("{}: {}", path.string(), img.message));
    }
}

/// Bilinear resize by `scale`.
Image resize(const Image& in, double scale) {
    Image out;
    out.width = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::lround(in.width * scale)));
    out.height = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(std::lround(in.height * scale)));
    out.rgba.resize(std::size_t{out.width} * out.height * 4);
    for (std::uint32_t y = 0; y < out.height; ++y) {
        const double sy = std::clamp((y + 0.5) / scale - 0.5, 0.0, in.height - 1.0);
        const auto y0 = static_cast<std::uint32_t>(sy);
        const std::uint32_t y1 = std::min(y0 + 1, in.height - 1);
        const double fy = sy - y0;
        for (std::uint32_t x = 0; x < out.width; ++x) {
            const double sx = std::clamp((x + 0.5) / scale - 0.5, 0.0, in.width - 1.0);
            const auto x0 = static_cast<std::uint32_t>(sx);
            const std::uint32_t x1 = std::min(x0 + 1, in.width - 1);
            const double fx = sx - x0;
            for (int c = 0; c < 4; ++c) {
                auto at = [&](std::uint32_t px, std::uint32_t py) {
                    return static_cast<double>(in.rgba[(std::size_t{py} * in.width + px) * 4 + c]);
                };
                const double v = (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) +
                                 (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
                out.rgba[(std::size_t{y} * out.width + x) * 4 + c] = static_cast<std::uint8_t>(std::lround(v));
            }
        }
    }
    return out;
}

/// Box blur of the given radius: a horizontal pass, then a vertical one.
Image blur(const Image& in, long radius) {
    if (radius == 0) return in;
    const auto r = static_cast<int>(radius);
    const auto w = static_cast<int>(in.width), h = static_cast<int>(in.height);
    auto pass = [&](const Image& src, bool horizontal) {
        Image dst = src;
        for (int y = 0; y < h; ++y) {
            for (int x = 0; x < w; ++x) {
                for (int c = 0; c < 4; ++c) {
                    int sum = 0, n = 0;
                    for (int k = -r; k <= r; ++k) {
                        const int px = horizontal ? std::clamp(x + k, 0, w - 1) : x;
                        const int py = horizontal ? y : std::clamp(y + k, 0, h - 1);
                        sum += src.rgba[(static_cast<std::size_t>(py) * in.width + static_cast<std::size_t>(px)) * 4 +
                                        static_cast<std::size_t>(c)];
                        ++n;
                    }
                    dst.rgba[(static_cast<std::size_t>(y) * in.width + static_cast<std::size_t>(x)) * 4 +
                             static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(sum / n);
                }
            }
        }
        return dst;
    };
    return pass(pass(in, true), false);
}

/// A test card: gradients, rings and a checker, different for each seed.
Image test_card(std::uint32_t width, std::uint32_t height, int seed) {
    Image img{width, height, std::vector<std::uint8_t>(std::size_t{width} * height * 4)};
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            const double dx = x - width / 2.0, dy = y - height / 2.0;
            const double ring = 0.5 + 0.5 * std::sin(std::sqrt(dx * dx + dy * dy) / (6.0 + seed % 5));
            const bool checker = ((x / 32) + (y / 32) + static_cast<std::uint32_t>(seed)) % 2 == 0;
            std::uint8_t* p = &img.rgba[(std::size_t{y} * width + x) * 4];
            p[0] = static_cast<std::uint8_t>(255.0 * x / width);
            p[1] = static_cast<std::uint8_t>(255.0 * ring);
            p[2] = static_cast<std::uint8_t>(checker ? 200 : 40 + 8 * (seed % 20));
            p[3] = 255;
        }
    }
    return img;
}

struct Done {
    std::uint32_t in_w, in_h, out_w, out_h;
};

int process(Args& a) {
    if (a.input.empty()) {
        a.input = "images_in";
        fs::create_directories(a.input);
        for (long i = 0; i < a.count; ++i) {
            write_png(fs::path(a.input) / fmt::format("card_{:03}.png", i),
                      test_card(640 + 16 * static_cast<std::uint32_t>(i % 8), 480, static_cast<int>(i)));
        }
        fmt::print("drew {} test images into {}\n", a.count, a.input);
    }
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(a.input, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".png") files.push_back(e.path());
    }
    if (ec) {
        fmt::print(stderr, "image_pipeline: cannot list '{}': {}\n", a.input, ec.message());
        return 1;
    }
    std::sort(files.begin(), files.end());
    fs::create_directories(a.output);

    const auto t0 = std::chrono::steady_clock::now();
    taskdist::WorkerPool<fs::path, Done> pool(
        [&](const fs::path& file) {
            const Image in = read_png(file);
            const Image out = blur(resize(in, a.scale), a.radius);
            write_png(fs::path(a.output) / file.filename(), out);
            return Done{in.width, in.height, out.width, out.height};
        },
        {.workers = static_cast<std::size_t>(a.workers), .name = "img"});
    std::vector<taskdist::TaskHandle<Done>> handles;
    for (const auto& f : files) handles.push_back(pool.submit(f));

    // Progress: redraw the bar as tasks finish (the pool's counters are the truth).
    const std::size_t total = files.size();
    for (;;) {
        const taskdist::PoolStats s = pool.stats();
        const std::uint64_t done = s.completed + s.failed;
        const std::size_t filled = total ? static_cast<std::size_t>(30 * done / total) : 30;
        fmt::print("\r[{:<30}] {}/{} images", std::string(filled, '#'), done, total);
        std::fflush(stdout);
        if (done >= total) break;
        (void)pool.wait_idle_for(100ms);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("\n");

    std::size_t ok = 0;
    for (std::size_t i = 0; i < handles.size(); ++i) {
        try {
            const Done d = handles[i].get();
            ++ok;
            if (i < 3) fmt::print("  {}: {}x{} -> {}x{}\n", files[i].filename().string(), d.in_w, d.in_h, d.out_w, d.out_h);
        } catch (const std::exception& e) {
            fmt::print("  failed: {}\n", e.what());
        }
    }
    fmt::print("{} of {} images written to {} in {:.2f} s ({:.1f} images/s)\n\n{:t}\n", ok, total,
               a.output, seconds, static_cast<double>(ok) / seconds, pool.stats());
    return ok == total ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    return cli::run("image_pipeline", parser(a), argc, argv, [&] { return process(a); });
}
