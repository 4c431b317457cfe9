// taskdist: Priority: higher SubmitOptions::priority first, FIFO among
// equals, with aging so that no task starves.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

#include "../distributor.hpp"

namespace taskdist {

/// One shared queue ordered by effective priority, taken by any worker.
///
/// Aging: a waiting task gains one level per `aging_step` waited. Since every
/// waiting task ages at the same rate, the order between two tasks never
/// changes while they wait: it is fixed at push time by the key
///   priority * aging_step - submit time
/// (larger first; FIFO among equal keys by a sequence number). So aging costs
/// nothing per pop, and a task of priority p waits behind tasks of priority
/// q > p submitted at most (q - p) * aging_step after it, never forever.
/// aging_step == 0 turns aging off (strict priority; starvation possible).
/// priority * aging_step saturates at +-2^62 ns (about 146 years of aging):
/// tasks beyond it rank above (or below) every other task, and among
/// themselves run in submission order.
struct Priority {
    std::chrono::nanoseconds aging_step = std::chrono::milliseconds(10);

    template <class Item>
    class queue {
    public:
        queue(const Priority& settings, std::size_t) : step_(settings.aging_step.count()) {
            if (step_ < 0) throw std::invalid_argument("taskdist::Priority: aging_step must not be negative");
        }

        Placement push(Item&& item, const TaskInfo& info, WorkerSet) {
            std::int64_t t = std::chrono::duration_cast<std::chrono::nanoseconds>(info.submitted_at.time_since_epoch()).count();
            std::int64_t key = step_ == 0 ? static_cast<std::int64_t>(info.priority) : scaled(info.priority) - t;
            std::lock_guard lock(mutex_);
            heap_.push_back(Entry{key, seq_++, std::move(item)});
            std::push_heap(heap_.begin(), heap_.end(), Before{});
            size_.store(heap_.size(), std::memory_order_release);
            return Placement::any();
        }

        std::optional<Item> try_pop(std::size_t) {
            if (size_.load(std::memory_order_acquire) == 0) return std::nullopt;
            std::lock_guard lock(mutex_);
            if (heap_.empty()) return std::nullopt;
            std::pop_heap(heap_.begin(), heap_.end(), Before{});
            std::optional<Item> out(std::move(heap_.back().item));
            heap_.pop_back();
            size_.store(heap_.size(), std::memory_order_release);
            return out;
        }

        std::size_t queued(std::size_t) const noexcept { return 0; }

    private:
        struct Entry {
            std::int64_t key;
            std::uint64_t seq;
            Item item;
        };
        // std::push_heap keeps the "largest" on top: make "runs first" largest.
        struct Before {
            bool operator()(const Entry& a, const Entry& b) const noexcept {
                if (a.key != b.key) return a.key < b.key;
                return a.seq > b.seq;
            }
        };

        // priority * step, saturated to +-2^62 so that subtracting a time
        // since the clock's epoch (well under 2^62 ns) cannot overflow.
        std::int64_t scaled(int priority) const noexcept {
            constexpr std::int64_t limit = std::int64_t{1} << 62;
            std::int64_t p = priority;
            if (p != 0 && (p > limit / step_ || p < -limit / step_)) return p > 0 ? limit : -limit;
            return p * step_;
        }

        std::int64_t step_;
        std::mutex mutex_;
        std::vector<Entry> heap_;
        std::uint64_t seq_ = 0;
        std::atomic<std::size_t> size_{0};
    };
};

static_assert(Distributor<Priority>, "Priority must model taskdist::Distributor");

} // namespace taskdist
