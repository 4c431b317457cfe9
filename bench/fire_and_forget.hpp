// W2 and W5's loop: n fire-and-forget tasks (a relaxed atomic increment
// each) posted by one or more producer threads, then wait for idle.
#pragma once

#include "common.hpp"

#include <thread>
#include <vector>

namespace bench {

template <class B>
void fire_and_forget(benchmark::State& state, int producers) {
    const std::size_t n = scaled(1'000'000);
    B pool(static_cast<std::size_t>(state.range(0)));
    TaskCounter count;
    const LoopTimer timer;
    for (auto _ : state) {
        const std::size_t per = n / static_cast<std::size_t>(producers);
        if (producers == 1) {
            for (std::size_t i = 0; i < per; ++i) pool.post([&count] { count.add(); });
        } else {
            std::vector<std::thread> threads;
            for (int p = 0; p < producers; ++p) {
                threads.emplace_back([&] {
                    for (std::size_t i = 0; i < per; ++i) {
                        pool.post([&count] { count.add(); });
                    }
                });
            }
            for (auto& t : threads) t.join();
        }
        pool.wait_idle();
    }
    benchmark::DoNotOptimize(count.get());
    per_task(state, n / static_cast<std::size_t>(producers) * static_cast<std::size_t>(producers), timer);
}

} // namespace bench
