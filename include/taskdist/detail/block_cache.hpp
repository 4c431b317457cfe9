// taskdist: recycling of the small blocks that task states live in.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>

#include "platform.hpp"
#include "ticks.hpp"

namespace taskdist::detail {

/// Every submit() takes one task-state block and the last owner gives it
/// back. Through malloc that cost W1 (a million handles held, then read)
/// 130-600 ns a task on glibc, the spread set by whether the previous
/// round's million frees had been consolidated and trimmed back to the
/// system (page faults on every block again); recycled here, 58-70 ns
/// at 2 workers and 4 alike.
///
/// Blocks of up to `max_block` bytes are kept in size classes `unit` bytes
/// apart, each `header` short of a multiple of `unit`: glibc puts an
/// 8-byte header before a block, so a 112-byte state in a 120-byte block
/// takes a 128-byte chunk, where a 128-byte block would take 144 (and a
/// first burst's page faults, most of its cost, grow with it). Each thread
/// keeps up to two batches of `batch` blocks per class (no atomics: a
/// thread that submits and drops its handles cycles these), and hands
/// whole batches to a process-wide depot beyond that, from which any thread
/// takes them. The depot returns a batch to the system once it
/// has sat unused for `retain_ns`, checked whenever the class's depot is
/// used, so a burst's memory is kept for the next burst, not for ever.
///
/// Thread-safety: alloc() and free() may be called from any thread; a block
/// may be freed by a thread other than the one that took it. Under
/// AddressSanitizer blocks go straight to operator new and delete, so that
/// it still sees every use of a freed state.
class BlockCache {
public:
    static constexpr std::size_t unit = 64;
    static constexpr std::size_t header = 8;
    static constexpr std::size_t classes = 8;
    static constexpr std::size_t max_block = unit * classes - header;
    static constexpr std::size_t batch = 128;
    static constexpr std::int64_t retain_ns = 1'000'000'000;

#if defined(TASKDIST_ASAN)
    static constexpr bool enabled = false;
#else
    static constexpr bool enabled = true;
#endif

    /// A block of at least n bytes (aligned as operator new's).
    static void* alloc(std::size_t n) {
        if (!enabled || n == 0 || n > max_block) return ::operator new(n);
        const std::size_t c = class_of(n);
        Local& l = local();
        List& hot = l.lists[c].hot;
        if (!hot.head && !l.dead) refill(l, c);
        if (Node* p = hot.head) {
            hot.head = p->next;
            --hot.count;
            return p;
        }
        return ::operator new(size_of(c));
    }

    /// Gives back a block that alloc(n) returned, with the same n.
    static void free(void* p, std::size_t n) noexcept {
        if (!enabled || n == 0 || n > max_block) return ::operator delete(p);
        const std::size_t c = class_of(n);
        Local& l = local();
        if (l.dead) return ::operator delete(p);
        if (!l.registered) enroll(l);
        PerClass& pc = l.lists[c];
        if (pc.hot.count == batch) {
            if (pc.spare.count != 0) depot(c).put(pc.spare);
            pc.spare = pc.hot;
            pc.hot = List{};
        }
        pc.hot.head = ::new (p) Node{pc.hot.head};
        ++pc.hot.count;
    }

    /// Returns every block in the depot, and the calling thread's own, to
    /// the system. Other threads keep theirs (at most 2 * batch a class).
    static void release_all() noexcept {
        if (!enabled) return;
        Local& l = local();
        for (std::size_t c = 0; c < classes; ++c) {
            free_list(l.lists[c].hot.head);
            free_list(l.lists[c].spare.head);
            l.lists[c] = PerClass{};
            depot(c).release(0);
        }
    }

    /// Bytes in the depot (all threads' surplus), for statistics and tests.
    static std::size_t depot_bytes() noexcept {
        std::size_t total = 0;
        for (std::size_t c = 0; c < classes; ++c) total += depot(c).blocks() * size_of(c);
        return total;
    }

    /// Drops depot batches unused for longer than `age_ns` as of `now_ns`
    /// (tests pass a future `now_ns`; the cache itself ages by steady time).
    static void release_older(std::int64_t age_ns, std::int64_t now_ns) noexcept {
        if (!enabled) return;
        for (std::size_t c = 0; c < classes; ++c) depot(c).release(age_ns, now_ns);
    }

private:
    struct Node {
        Node* next;
    };
    struct List {
        Node* head = nullptr;
        std::size_t count = 0;
    };
    struct PerClass {
        List hot;    // alloc and free work here
        List spare;  // one full batch, so a thread at the boundary does not bounce batches
    };
    /// Trivially destructible, so it stays usable during thread exit even
    /// after the Flusher has run: a state freed by a later thread_local's
    /// destructor then goes straight to operator delete (`dead`).
    struct Local {
        PerClass lists[classes];
        bool registered = false;
        bool dead = false;
    };
    struct Flusher {
        Flusher() = default;
        Flusher(const Flusher&) = delete;
        Flusher& operator=(const Flusher&) = delete;
        ~Flusher() {
            Local& l = local();
            for (std::size_t c = 0; c < classes; ++c) {
                if (l.lists[c].hot.count != 0) depot(c).put(l.lists[c].hot);
                if (l.lists[c].spare.count != 0) depot(c).put(l.lists[c].spare);
                l.lists[c] = PerClass{};
            }
            l.dead = true;
        }
    };

    /// A batch in the depot: its first block holds the links.
    struct Batch {
        Node* next;  // the batch's other blocks, as a Node chain
        Batch* newer;
        Batch* older;
        std::int64_t stamp;
        std::size_t count;
    };
    static_assert(sizeof(Batch) <= unit - header, "a batch's links must fit in its smallest block");

    class Depot {
    public:
        void put(const List& list) noexcept {
            Node* rest = list.head->next;
            // construct_at, not a placement new-expression: cppcheck 2.10
            // reads `::new (p) Batch{...}` as leaving the pointer unset.
            const std::int64_t now = steady_ns();  // outside the lock
            Batch* const b =
                std::construct_at(reinterpret_cast<Batch*>(list.head), Batch{rest, nullptr, nullptr, now, list.count});
            Batch* expired = nullptr;
            {
                const std::lock_guard g(mutex_);
                b->older = newest_;
                if (newest_) newest_->newer = b;
                newest_ = b;
                if (!oldest_) oldest_ = b;
                blocks_.store(blocks_.load(std::memory_order_relaxed) + b->count, std::memory_order_relaxed);
                expired = cut_older(retain_ns, now);
            }
            free_batches(expired);
        }
        /// The most recently returned batch, or an empty list.
        List take() noexcept {
            // A hint, read without the lock: a first burst finds the depot
            // empty on every allocation, and would take the lock for each.
            if (blocks_.load(std::memory_order_relaxed) == 0) return List{};
            const std::int64_t now = steady_ns();  // outside the lock
            Batch* b = nullptr;
            Batch* expired = nullptr;
            {
                const std::lock_guard g(mutex_);
                b = newest_;
                if (b) {
                    unlink(b);
                    expired = cut_older(retain_ns, now);
                }
            }
            free_batches(expired);
            if (!b) return List{};
            const std::size_t count = b->count;
            Node* rest = b->next;
            return List{::new (static_cast<void*>(b)) Node{rest}, count};
        }
        void release(std::int64_t age_ns, std::int64_t now = steady_ns()) noexcept {
            Batch* expired = nullptr;
            {
                const std::lock_guard g(mutex_);
                expired = cut_older(age_ns, now);
            }
            free_batches(expired);
        }
        std::size_t blocks() const noexcept { return blocks_.load(std::memory_order_relaxed); }

    private:
        /// Takes b out of the list (under mutex_).
        void unlink(Batch* b) noexcept {
            (b->newer ? b->newer->older : newest_) = b->older;
            (b->older ? b->older->newer : oldest_) = b->newer;
            blocks_.store(blocks_.load(std::memory_order_relaxed) - b->count, std::memory_order_relaxed);
        }
        /// Unlinks the batches older than age_ns (oldest first); returns them
        /// chained through `older`, to be freed outside the lock.
        Batch* cut_older(std::int64_t age_ns, std::int64_t now) noexcept {
            Batch* first = nullptr;
            while (oldest_ && now - oldest_->stamp >= age_ns) {
                Batch* b = oldest_;
                unlink(b);
                b->older = first;
                first = b;
            }
            return first;
        }
        static void free_batches(Batch* b) noexcept {
            while (b) {
                Batch* next = b->older;
                Node* rest = b->next;
                ::operator delete(static_cast<void*>(b));
                free_list(rest);
                b = next;
            }
        }

        SpinMutex mutex_;
        Batch* newest_ = nullptr;
        Batch* oldest_ = nullptr;
        std::atomic<std::size_t> blocks_{0};  // written under mutex_
    };

    static std::size_t class_of(std::size_t n) noexcept { return (n + header - 1) / unit; }
    static std::size_t size_of(std::size_t c) noexcept { return (c + 1) * unit - header; }

    static Local& local() noexcept {
        constinit static thread_local Local l;
        return l;
    }
    /// Constant-initialised and trivially destructible, so usable from the
    /// first static constructor to the last static destructor, and by
    /// threads that exit after that. What it holds stays reachable.
    static Depot& depot(std::size_t c) noexcept {
        struct alignas(cache_line) Slot {
            Depot d;
        };
        static_assert(std::is_trivially_destructible_v<Slot>);
        constinit static Slot slots[classes];
        return slots[c].d;
    }

    /// Constructs this thread's Flusher, whose destructor gives the
    /// thread's blocks to the depot when the thread exits.
    static void enroll(Local& l) noexcept {
        l.registered = true;
        static thread_local Flusher f;
        (void)f;
    }
    /// Called with this class's hot list empty.
    static void refill(Local& l, std::size_t c) noexcept {
        PerClass& pc = l.lists[c];
        if (pc.spare.head) {
            pc.hot = pc.spare;
            pc.spare = List{};
            return;
        }
        if (!l.registered) enroll(l);
        pc.hot = depot(c).take();
    }
    static void free_list(Node* n) noexcept {
        while (n) {
            Node* next = n->next;
            ::operator delete(static_cast<void*>(n));
            n = next;
        }
    }
};

}  // namespace taskdist::detail
