// taskdist: a FIFO that keeps its storage.
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace taskdist::detail {

/// A growable ring buffer of T (which needs no default constructor). Queues
/// that fill and empty all the time would, as std::deque, allocate and free
/// a block every few hundred items; this one grows to its high-water mark
/// and stays there. Not thread-safe: callers hold a lock or own it.
template <class T>
class Ring {
public:
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return buf_.size(); }
    T& front() noexcept { return *buf_[head_]; }
    const T& front() const noexcept { return *buf_[head_]; }
    T& back() noexcept { return *buf_[(head_ + size_ - 1) & (buf_.size() - 1)]; }

    void push_back(T&& v) {
        if (size_ == buf_.size()) grow();
        buf_[(head_ + size_) & (buf_.size() - 1)].emplace(std::move(v));
        ++size_;
    }

    void pop_front() noexcept {
        buf_[head_].reset();
        head_ = (head_ + 1) & (buf_.size() - 1);
        --size_;
    }

    /// Room for n elements without growing, in at most one allocation.
    void reserve(std::size_t n) {
        if (n <= buf_.size()) return;
        std::size_t cap = buf_.empty() ? 16 : buf_.size();
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
            std::optional<T>& from = buf_[(head_ + i) & (buf_.size() - 1)];
            to.buf_[(to.head_ + to.size_) & (to.buf_.size() - 1)].emplace(std::move(*from));
            ++to.size_;
            from.reset();
        }
        size_ = first;
    }

    void swap(Ring& o) noexcept {
        buf_.swap(o.buf_);
        std::swap(head_, o.head_);
        std::swap(size_, o.size_);
    }

private:
    void grow() { grow(buf_.empty() ? 16 : buf_.size() * 2); }
    void grow(std::size_t cap) {
        std::vector<std::optional<T>> next(cap);
        for (std::size_t i = 0; i < size_; ++i) next[i].emplace(std::move(*buf_[(head_ + i) & (buf_.size() - 1)]));
        buf_ = std::move(next);
        head_ = 0;
    }

    std::vector<std::optional<T>> buf_;  // empty, or a power of two long
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace taskdist::detail
