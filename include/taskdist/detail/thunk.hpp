// taskdist: Thunk, a move-only type-erased callable with inline storage, for
// the tasks of a ThreadPool.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "../task_context.hpp"
#include "../task_handle.hpp"

namespace taskdist::detail {

/// Calls as thunk(ctx, state). Callables up to `inline_size` bytes that move
/// without throwing live inside the Thunk (no allocation: the common case of
/// a lambda capturing a few values); larger ones go to the heap.
/// std::function would force copyability and allocate more often.
/// 40 bytes at 8-byte alignment make the queued Job (Thunk, state, submit
/// time) 64 bytes, a cache line's worth (not aligned to one: queue slots are
/// packed): every task crosses cores in the queue, and at 48 bytes and
/// max_align_t it took 80.
class Thunk {
public:
    static constexpr std::size_t inline_size = 40;

    // cppcheck-suppress uninitMemberVar ; buf_ is raw storage, read only while ops_ says it holds a callable
    Thunk() noexcept = default;

    template <class F, class D = std::decay_t<F>>
        requires(!std::is_same_v<D, Thunk>)
    // NOLINTNEXTLINE(bugprone-forwarding-reference-overload): the requires clause keeps Thunk itself out; clang-tidy 14 sees only enable_if
    explicit Thunk(F&& f) {
        if constexpr (fits_inline<D>) {
            ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
            ops_ = &inline_ops<D>;
        } else {
            *reinterpret_cast<D**>(buf_) = new D(std::forward<F>(f));
            ops_ = &heap_ops<D>;
        }
    }

    Thunk(Thunk&& o) noexcept : ops_(o.ops_) {
        relocate_from(o);
    }
    Thunk& operator=(Thunk&& o) noexcept {
        if (this != &o) {
            reset();
            ops_ = o.ops_;
            relocate_from(o);
        }
        return *this;
    }
    Thunk(const Thunk&) = delete;
    Thunk& operator=(const Thunk&) = delete;
    ~Thunk() { reset(); }

    void operator()(TaskContext& ctx, TaskStateBase* state) { ops_->call(buf_, ctx, state); }

private:
    /// move and destroy are null where a byte copy relocates and nothing
    /// needs destroying: a task moves three or four times between submit and
    /// run, and an indirect call each time showed in the profile.
    using MoveFn = void (*)(void* from, void* to) noexcept;
    using DestroyFn = void (*)(void*) noexcept;
    struct Ops {
        void (*call)(void*, TaskContext&, TaskStateBase*);
        MoveFn move;
        DestroyFn destroy;
    };

    template <class D>
    static constexpr bool trivial = std::is_trivially_copyable_v<D> && std::is_trivially_destructible_v<D>;

    template <class D>
    // NOLINTNEXTLINE(misc-redundant-expression): clang-tidy 14 takes sizeof(D) and alignof(D) for the same expression
    static constexpr bool fits_inline = sizeof(D) <= inline_size && alignof(D) <= alignof(void*) &&
                                        std::is_nothrow_move_constructible_v<D>;

    template <class D>
    static void relocate(void* from, void* to) noexcept {
        D* src = static_cast<D*>(from);
        ::new (to) D(std::move(*src));
        src->~D();
    }

    template <class D>
    static void destroy(void* p) noexcept {
        static_cast<D*>(p)->~D();
    }

    template <class D>
    static constexpr MoveFn mover() noexcept {
        if constexpr (trivial<D>) {
            return nullptr;
        } else {
            return &relocate<D>;
        }
    }

    template <class D>
    static constexpr DestroyFn destroyer() noexcept {
        if constexpr (trivial<D>) {
            return nullptr;
        } else {
            return &destroy<D>;
        }
    }

    template <class D>
    static constexpr Ops inline_ops{
        [](void* p, TaskContext& ctx, TaskStateBase* s) { (*static_cast<D*>(p))(ctx, s); },
        mover<D>(),
        destroyer<D>(),
    };

    // The buffer holds a pointer: a byte copy moves it.
    template <class D>
    static constexpr Ops heap_ops{
        [](void* p, TaskContext& ctx, TaskStateBase* s) { (**static_cast<D**>(p))(ctx, s); },
        nullptr,
        [](void* p) noexcept { delete *static_cast<D**>(p); },
    };

    void relocate_from(Thunk& o) noexcept {
        if (!ops_) return;
        if (ops_->move) {
            ops_->move(o.buf_, buf_);
        } else {
            std::memcpy(buf_, o.buf_, inline_size);
        }
        o.ops_ = nullptr;
    }

    void reset() noexcept {
        if (ops_) {
            if (ops_->destroy) ops_->destroy(buf_);
            ops_ = nullptr;
        }
    }

    alignas(void*) unsigned char buf_[inline_size];
    const Ops* ops_ = nullptr;
};

} // namespace taskdist::detail
