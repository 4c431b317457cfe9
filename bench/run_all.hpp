// W3 and W4 measure `run_all(n, task, on_post)`: run task(i) for every i < n,
// then return once all are done. On a pool that is n posts, each right after
// on_post(i), and wait_idle(); on bare threads, see backends/bare_threads.hpp.
#pragma once

#include "backends.hpp"

#include <cstddef>

namespace bench {

template <class B>
auto runner(B& pool) {
    return [&pool](std::size_t n, auto task, auto on_post) {
        for (std::size_t i = 0; i < n; ++i) {
            on_post(i);
            pool.post([task, i] { task(i); });
        }
        pool.wait_idle();
    };
}

} // namespace bench
