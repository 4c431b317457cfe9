// taskdist: SharedQueue, the default distributor: one lock-free MPMC queue
// (moodycamel::ConcurrentQueue) that every worker takes from.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <utility>

#include "../detail/concurrentqueue.hpp"
#include "../detail/optional_filler.hpp"
#include "../distributor.hpp"

namespace taskdist {

/// Work-conserving: no worker idles while any task waits, whatever ran
/// before. The default because it is the fastest and never leaves a task
/// behind a slow one. FIFO per submitting thread with one worker; with
/// several, roughly. No settings.
///
/// A worker takes up to `batch` tasks from the shared queue at once into a
/// small cache of its own, and then runs them from there: one pass over the
/// shared queue's indices, which other cores keep writing, pays for up to
/// `batch` tasks instead of one. The cache stays visible: a worker that finds
/// the shared queue empty takes the oldest task from another worker's cache
/// before it goes to sleep, so no worker idles while a cached task waits.
struct SharedQueue {
    static constexpr bool reads_submit_time = false;
    /// The most tasks a worker takes from the shared queue in one pass.
    static constexpr std::size_t batch = 16;

    template <class Item>
    class queue {
    public:
        queue(const SharedQueue&, std::size_t workers)
            : caches_(std::make_unique<Cache[]>(workers)), count_(workers) {
            for (std::size_t i = 0; i < workers; ++i) caches_[i].token.emplace(q_);
        }

        Placement push(Item&& item, const TaskInfo&, WorkerSet) {
            // enqueue() only fails when a block cannot be allocated.
            if (!q_.enqueue(std::move(item))) throw std::bad_alloc();
            return Placement::any();
        }

        std::optional<Item> try_pop(std::size_t w) {
            Cache& c = caches_[w];
            {
                std::lock_guard lock(c.mutex);
                if (c.head == c.end) {
                    // Refilled under the lock, so that a thief waits for the
                    // tasks instead of finding them in neither place; and
                    // marked non-empty first, so that a worker about to sleep
                    // that finds the shared queue empty looks here.
                    c.size.store(batch, std::memory_order_seq_cst);
                    c.head = 0;
                    c.end = q_.try_dequeue_bulk(*c.token, detail::OptionalFiller<Item>{c.slots}, batch);
                    c.size.store(c.end, std::memory_order_release);
                }
                if (c.head != c.end) return take(c);
            }
            return steal(w);
        }

        /// Worker w stops taking tasks for a while (it leaves, or is down):
        /// its cached tasks go back to the shared queue, for the others.
        /// What cannot be re-queued (no memory) stays where thieves find it.
        void hand_back(std::size_t w) noexcept {
            Cache& c = caches_[w];
            std::lock_guard lock(c.mutex);
            while (c.head != c.end) {
                std::optional<Item>& slot = c.slots[c.head];
                if (!q_.enqueue(std::move(*slot))) break;
                slot.reset();
                ++c.head;
            }
            c.size.store(c.end - c.head, std::memory_order_release);
        }

        std::size_t queued(std::size_t) const noexcept { return 0; }

    private:
        struct alignas(detail::cache_line) Cache {
            detail::SpinMutex mutex;
            /// end - head, readable without the lock: a thief skips an empty
            /// cache without touching the owner's lock.
            std::atomic<std::size_t> size{0};
            std::size_t head = 0;
            std::size_t end = 0;
            std::optional<moodycamel::ConsumerToken> token;
            std::optional<Item> slots[batch];
        };

        /// With c's lock held and c not empty.
        static std::optional<Item> take(Cache& c) {
            std::optional<Item> out = std::exchange(c.slots[c.head++], std::nullopt);
            c.size.store(c.end - c.head, std::memory_order_release);
            return out;
        }

        std::optional<Item> steal(std::size_t w) {
            for (std::size_t i = 1; i < count_; ++i) {
                Cache& c = caches_[(w + i) % count_];
                if (c.size.load(std::memory_order_acquire) == 0) continue;
                std::lock_guard lock(c.mutex);
                if (c.head != c.end) return take(c);
            }
            return std::nullopt;
        }

        moodycamel::ConcurrentQueue<Item> q_;
        std::unique_ptr<Cache[]> caches_;
        std::size_t count_;
    };
};

static_assert(Distributor<SharedQueue>, "SharedQueue must model taskdist::Distributor");

} // namespace taskdist
