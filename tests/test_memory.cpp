// Tests of the task-state block cache (detail/block_cache.hpp): reuse on
// one thread, a batch's way through the process-wide depot to another
// thread, ageing out, thread exit, and the states that bypass it. A process
// of its own: the depot is process-wide, and these tests count its bytes.
//
// Under AddressSanitizer the cache is off (blocks go to operator new and
// delete, so that it sees every use of a freed state): the cases that test
// reuse say so and check only that the bypass works.
#include "support.hpp"

#include <taskdist/taskdist.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace {

using namespace test_support;
using Cache = taskdist::detail::BlockCache;

// 100 bytes: the 120-byte class, which W1's 112-byte states use.
constexpr std::size_t small = 100;
constexpr std::size_t small_class = 120;

std::vector<void*> take(std::size_t n, std::size_t bytes = small) {
    std::vector<void*> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(Cache::alloc(bytes));
    return v;
}
void give(const std::vector<void*>& v, std::size_t bytes = small) {
    for (void* p : v) Cache::free(p, bytes);
}

struct alignas(64) Wide {
    int value;
};

} // namespace

TEST_CASE("a freed block is the next one its thread takes, in its own size class only", "[block_cache]") {
    taskdist::release_cached_memory();
    void* p = Cache::alloc(small);
    Cache::free(p, small);
    void* other = Cache::alloc(300);  // another class: may not get p
    void* same = Cache::alloc(small - 30);  // the same 120-byte class
    if (Cache::enabled) {
        CHECK(other != p);
        CHECK(same == p);
    }
    Cache::free(other, 300);
    Cache::free(same, small - 30);
    taskdist::release_cached_memory();
}

TEST_CASE("a thread's surplus goes to the depot in batches, and all of it when the thread exits; "
          "another thread then takes those very blocks",
          "[block_cache]") {
    taskdist::release_cached_memory();
    REQUIRE(taskdist::cached_memory_bytes() == 0);
    const std::size_t n = 3 * Cache::batch + 10;
    std::vector<void*> freed;
    std::size_t depot_before_exit = 0;
    std::thread t([&] {
        freed = take(n);
        give(freed);
        depot_before_exit = taskdist::cached_memory_bytes();
    });
    t.join();
    if (!Cache::enabled) {
        CHECK(taskdist::cached_memory_bytes() == 0);
        return;
    }
    // The thread keeps two batches' worth (the last 10 freed and one full
    // batch); the two full batches before them went to the depot.
    CHECK(depot_before_exit == 2 * Cache::batch * small_class);
    CHECK(taskdist::cached_memory_bytes() == n * small_class);

    const std::vector<void*> again = take(n);
    CHECK(taskdist::cached_memory_bytes() == 0);
    const std::set<void*> before(freed.begin(), freed.end());
    CHECK(std::all_of(again.begin(), again.end(), [&](void* p) { return before.count(p) == 1; }));
    CHECK(std::set<void*>(again.begin(), again.end()).size() == n);
    give(again);
    taskdist::release_cached_memory();
    CHECK(taskdist::cached_memory_bytes() == 0);
}

TEST_CASE("depot batches unused for retain_ns go back to the system; fresh ones stay", "[block_cache]") {
    taskdist::release_cached_memory();
    std::thread([] { give(take(Cache::batch * 2 + 1)); }).join();
    const std::size_t held = taskdist::cached_memory_bytes();
    if (!Cache::enabled) {
        CHECK(held == 0);
        return;
    }
    REQUIRE(held == (Cache::batch * 2 + 1) * small_class);
    const std::int64_t now = taskdist::detail::steady_ns();
    Cache::release_older(Cache::retain_ns, now);
    CHECK(taskdist::cached_memory_bytes() == held);
    Cache::release_older(Cache::retain_ns, now + Cache::retain_ns);
    CHECK(taskdist::cached_memory_bytes() == 0);
}

namespace {
// Made before the thread first uses the cache, so destroyed after the
// cache's per-thread flusher: its free comes once the thread's lists are gone.
struct LateFree {
    void* block = nullptr;
    ~LateFree() {
        if (block) Cache::free(block, small);
    }
};
thread_local LateFree late;
} // namespace

TEST_CASE("a block freed by a thread_local destroyed after the thread's cache goes to the system", "[block_cache]") {
    taskdist::release_cached_memory();
    std::thread([] {
        late.block = nullptr;  // constructs `late` before the cache's flusher
        void* b = Cache::alloc(small);
        Cache::free(Cache::alloc(small), small);  // enrols the flusher
        late.block = b;
    }).join();
    // The flusher gave the depot the one block freed in the body; the late
    // one went to operator delete (under ASan both did).
    CHECK(taskdist::cached_memory_bytes() == (Cache::enabled ? small_class : 0));
    taskdist::release_cached_memory();
}

TEST_CASE("states too large for the cache, and over-aligned results, bypass it and still work", "[block_cache]") {
    taskdist::release_cached_memory();
    {
        taskdist::WorkerPool<int, Wide> pool([](int x) { return Wide{x * 2}; }, {.workers = 2});
        std::vector<taskdist::TaskHandle<Wide>> hs;
        for (int i = 0; i < 100; ++i) hs.push_back(pool.submit(i));
        for (int i = 0; i < 100; ++i) CHECK(hs[static_cast<std::size_t>(i)].get().value == 2 * i);
    }
    {
        struct Big {
            unsigned char bytes[2 * Cache::max_block] = {};
        };
        taskdist::WorkerPool<int, Big> pool([](int x) {
            Big b;
            b.bytes[sizeof b.bytes - 1] = static_cast<unsigned char>(x);
            return b;
        }, {.workers = 2});
        auto h = pool.submit(7);
        CHECK(h.get().bytes[2 * Cache::max_block - 1] == 7);
    }
    void* big = Cache::alloc(Cache::max_block + 1);
    Cache::free(big, Cache::max_block + 1);
    CHECK(taskdist::cached_memory_bytes() == 0);  // nothing of these reached the depot
}

TEST_CASE("a pool's states are recycled: a second round of submits takes the blocks the first gave back",
          "[block_cache]") {
    taskdist::release_cached_memory();
    taskdist::WorkerPool<long, long> pool([](long x) { return x + 1; }, {.workers = 2});
    constexpr long n = 2000;
    std::vector<taskdist::TaskHandle<long>> hs;
    auto submit_all = [&] {
        for (long i = 0; i < n; ++i) hs.push_back(pool.submit(i));
    };
    auto read_all = [&] {
        long sum = 0;
        for (auto& h : hs) sum += h.get();
        hs.clear();
        return sum;
    };
    submit_all();
    CHECK(read_all() == n * (n + 1) / 2);
    // 2000 freed here: more than this thread keeps, so the depot has some.
    const std::size_t after_first = taskdist::cached_memory_bytes();
    if (Cache::enabled) CHECK(after_first > 0);
    submit_all();
    // The second round's states took every block the depot held.
    CHECK(taskdist::cached_memory_bytes() == 0);
    CHECK(read_all() == n * (n + 1) / 2);
    CHECK(taskdist::cached_memory_bytes() <= after_first);
    taskdist::release_cached_memory();
}
