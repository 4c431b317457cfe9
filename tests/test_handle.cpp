#include "catch.hpp"

#include <taskdist/taskdist.hpp>

TEST_CASE("a submitted task's value reaches its handle") {
    taskdist::WorkerPool<int, int> pool([](int x) { return x + 1; }, {.workers = 2});
    auto h = pool.submit(41);
    REQUIRE(h.get() == 42);
}
