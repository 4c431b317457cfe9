// Runs a fuzz target over saved inputs without libFuzzer, so that every
// compiler and sanitizer build replays the corpus as a CTest test: a crash
// once found by fuzzing stays fixed.
//
//   fuzz_replay_<target> DIR_OR_FILE...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool replay(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", file.c_str());
        return false;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly the input's size, as libFuzzer gives it, so that
    // AddressSanitizer sees a read past the end.
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    return true;
}

} // namespace

int main(int argc, char** argv) {
    std::size_t count = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<fs::path> files;
        if (fs::is_directory(argv[i])) {
            for (const auto& e : fs::directory_iterator(argv[i])) {
                if (e.is_regular_file()) files.push_back(e.path());
            }
            std::sort(files.begin(), files.end());  // the same order on every run
        } else {
            files.emplace_back(argv[i]);
        }
        for (const fs::path& f : files) {
            std::fprintf(stderr, "replaying %s\n", f.c_str());
            if (!replay(f)) return 1;
            ++count;
        }
    }
    // An empty or mistyped corpus path would otherwise pass without testing anything.
    if (count == 0) {
        std::fprintf(stderr, "no inputs found in the paths given\n");
        return 1;
    }
    std::printf("replayed %zu inputs\n", count);
    return 0;
}
