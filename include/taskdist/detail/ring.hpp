// taskdist: a FIFO that keeps its storage.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace taskdist::detail {

/// A growable ring buffer of T (which needs no default constructor). Queues
/// that fill and empty all the time would, as std::deque, allocate and free
/// a block every few hundred items; this one grows to its high-water mark
/// and stays there. Its storage is raw: growing touches only the slots that
/// hold elements (a buffer of std::optional<T> wrote a flag into every slot
/// of each new buffer first, 28% of Sticky's push in W2, where the lanes of
/// a fresh pool grow to half a million tasks), and a slot is sizeof(T).
/// Not thread-safe: callers hold a lock or own it.
template <class T>
class Ring {
public:
    Ring() noexcept = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    ~Ring() {
        while (size_ != 0) pop_front();
        if (buf_) std::allocator<T>{}.deallocate(buf_, cap_);
    }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return cap_; }
    T& front() noexcept { return buf_[head_]; }
    const T& front() const noexcept { return buf_[head_]; }
    T& back() noexcept { return buf_[slot(size_ - 1)]; }

    void push_back(T&& v) {
        if (size_ == cap_) grow(cap_ == 0 ? 16 : cap_ * 2);
        ::new (static_cast<void*>(buf_ + slot(size_))) T(std::move(v));
        ++size_;
    }

    void pop_front() noexcept {
        std::destroy_at(buf_ + head_);
        head_ = (head_ + 1) & (cap_ - 1);
        --size_;
    }

    /// Room for n elements without growing, in at most one allocation.
    void reserve(std::size_t n) {
        if (n <= cap_) return;
        std::size_t cap = cap_ == 0 ? 16 : cap_;
        while (cap < n) cap *= 2;
        grow(cap);
    }

    /// Moves the last k elements (k <= size()) to the back of `to`, in
    /// order. For a T whose move cannot throw: the caller reserves room in
    /// `to` first (which may throw, before anything has moved).
    void move_back_to(Ring& to, std::size_t k) noexcept {
        static_assert(std::is_nothrow_move_constructible_v<T>, "a throwing move would leave holes in both rings");
        const std::size_t first = size_ - k;
        for (std::size_t i = first; i < size_; ++i) {
            T* from = buf_ + slot(i);
            ::new (static_cast<void*>(to.buf_ + to.slot(to.size_))) T(std::move(*from));
            ++to.size_;
            std::destroy_at(from);
        }
        size_ = first;
    }

    void swap(Ring& o) noexcept {
        std::swap(buf_, o.buf_);
        std::swap(cap_, o.cap_);
        std::swap(head_, o.head_);
        std::swap(size_, o.size_);
    }

private:
    /// The slot of the i-th element from the front.
    std::size_t slot(std::size_t i) const noexcept { return (head_ + i) & (cap_ - 1); }

    /// A move that can throw copies instead where T can be copied, so that
    /// a failure leaves this ring as it was (std::vector's rule).
    void grow(std::size_t cap) {
        std::allocator<T> alloc;
        T* next = alloc.allocate(cap);
        std::size_t built = 0;
        try {
            for (; built < size_; ++built) {
                ::new (static_cast<void*>(next + built)) T(std::move_if_noexcept(buf_[slot(built)]));
            }
        } catch (...) {
            std::destroy(next, next + built);
            alloc.deallocate(next, cap);
            throw;
        }
        for (std::size_t i = 0; i < size_; ++i) std::destroy_at(buf_ + slot(i));
        if (buf_) alloc.deallocate(buf_, cap_);
        buf_ = next;
        cap_ = cap;
        head_ = 0;
    }

    T* buf_ = nullptr;  // null, or cap_ (a power of two) slots
    std::size_t cap_ = 0;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace taskdist::detail
