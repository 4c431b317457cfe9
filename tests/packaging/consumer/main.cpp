// A program outside taskdist's tree that uses it the way a user would; the
// packaging tests build it against each way of consuming the library.
#include <taskdist/taskdist.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
    taskdist::WorkerPool<int, long> pool([](int x) { return static_cast<long>(x) * x; }, {.workers = 2});
    std::vector<taskdist::TaskHandle<long>> handles;
    for (int i = 1; i <= 100; ++i) handles.push_back(pool.submit(i));
    long sum = 0;
    for (auto& h : handles) sum += h.get();
    const long expected = 100L * 101 * 201 / 6;  // sum of squares 1..100
    std::printf("taskdist %s: sum of squares %ld (expected %ld)\n", TASKDIST_VERSION_STRING, sum, expected);
    return sum == expected && std::string(TASKDIST_VERSION_STRING) == TASKDIST_EXPECTED_VERSION ? 0 : 1;
}
