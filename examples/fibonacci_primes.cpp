// The classic worker example: fibonacci and prime-counting tasks of
// different kinds through one handler, with statistics printed every second.
#include <taskdist/taskdist.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <variant>
#include <vector>

namespace {

struct Fibonacci {
    int n;
};
struct CountPrimes {
    std::uint64_t below;
};
using Job = std::variant<Fibonacci, CountPrimes>;

std::uint64_t fib(int n) { return n < 2 ? static_cast<std::uint64_t>(n) : fib(n - 1) + fib(n - 2); }

std::uint64_t count_primes(std::uint64_t below) {
    std::uint64_t count = 0;
    for (std::uint64_t k = 2; k < below; ++k) {
        bool prime = true;
        for (std::uint64_t d = 2; d * d <= k; ++d) {
            if (k % d == 0) {
                prime = false;
                break;
            }
        }
        count += prime;
    }
    return count;
}

struct Handler {
    std::uint64_t operator()(const Job& job) const {
        return std::visit([](const auto& j) -> std::uint64_t {
            if constexpr (std::is_same_v<std::decay_t<decltype(j)>, Fibonacci>) {
                return fib(j.n);
            } else {
                return count_primes(j.below);
            }
        }, job);
    }
};

void print_stats(const taskdist::PoolStats& s) {
    std::printf("  %llu/%llu done, %llu queued, %llu running, run p50 %.2f ms p99 %.2f ms, %.0f tasks/s\n",
                static_cast<unsigned long long>(s.completed), static_cast<unsigned long long>(s.submitted),
                static_cast<unsigned long long>(s.queued), static_cast<unsigned long long>(s.running),
                static_cast<double>(s.run.p50.count()) / 1e6, static_cast<double>(s.run.p99.count()) / 1e6,
                s.throughput);
}

} // namespace

int main() {
    taskdist::WorkerPool<Job, std::uint64_t> pool(Handler{}, {.workers = 4, .name = "fibprime"});

    std::vector<taskdist::TaskHandle<std::uint64_t>> fibs, primes;
    for (int i = 0; i < 40; ++i) fibs.push_back(pool.submit(Fibonacci{22 + i % 10}));
    for (int i = 0; i < 40; ++i) primes.push_back(pool.submit(CountPrimes{20000u + 5000u * static_cast<unsigned>(i % 8)}));

    std::atomic<bool> done{false};
    std::thread reporter([&] {
        while (!done.load()) {
            print_stats(pool.stats());
            std::this_thread::sleep_for(std::chrono::seconds(1));  // a report interval, not synchronisation
        }
    });

    std::uint64_t fib_sum = 0, prime_sum = 0;
    for (auto& h : fibs) fib_sum += h.get();
    for (auto& h : primes) prime_sum += h.get();
    pool.wait_idle();
    done = true;
    reporter.join();

    std::printf("sum of fibonacci results: %llu\nsum of prime counts: %llu\nfinal:\n",
                static_cast<unsigned long long>(fib_sum), static_cast<unsigned long long>(prime_sum));
    print_stats(pool.stats());
    for (const auto& w : pool.stats().per_worker) {
        std::printf("  worker %zu: %llu tasks, busy %.1f ms\n", w.index, static_cast<unsigned long long>(w.completed),
                    static_cast<double>(w.busy_time.count()) / 1e6);
    }
    return 0;
}
