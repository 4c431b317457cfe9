// taskdist: SharedQueue, the default distributor: one lock-free MPMC queue
// (moodycamel::ConcurrentQueue) that every worker takes from.
#pragma once

#include <memory>
#include <new>
#include <optional>
#include <vector>

#include "../detail/concurrentqueue.hpp"
#include "../distributor.hpp"

namespace taskdist {

/// Work-conserving: no worker idles while any task waits, whatever ran
/// before. The default because it is the fastest and never leaves a task
/// behind a slow one. FIFO per submitting thread; across threads, roughly.
/// No settings.
struct SharedQueue {
    static constexpr bool reads_submit_time = false;
    template <class Item>
    class queue {
    public:
        queue(const SharedQueue&, std::size_t workers) {
            tokens_.reserve(workers);
            for (std::size_t i = 0; i < workers; ++i) tokens_.push_back(std::make_unique<moodycamel::ConsumerToken>(q_));
        }

        Placement push(Item&& item, const TaskInfo&, WorkerSet) {
            // enqueue() only fails when a block cannot be allocated.
            if (!q_.enqueue(std::move(item))) throw std::bad_alloc();
            return Placement::any();
        }

        std::optional<Item> try_pop(std::size_t w) {
            std::optional<Item> out;
            Sink sink{out};
            q_.try_dequeue(*tokens_[w], sink);
            return out;
        }

        std::size_t queued(std::size_t) const noexcept { return 0; }

    private:
        // moodycamel dequeues by assigning into the caller's object; this
        // lets it assign into an empty optional, so Item needs no default
        // constructor.
        struct Sink {
            std::optional<Item>& out;
            Sink& operator=(Item&& item) noexcept(std::is_nothrow_move_constructible_v<Item>) {
                out.emplace(std::move(item));
                return *this;
            }
        };
        moodycamel::ConcurrentQueue<Item> q_;
        // Tokens hold a reference to q_ and are used by one worker each.
        std::vector<std::unique_ptr<moodycamel::ConsumerToken>> tokens_;
    };
};

static_assert(Distributor<SharedQueue>, "SharedQueue must model taskdist::Distributor");

} // namespace taskdist
