// taskdist: an output iterator that emplaces into a run of empty optionals.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

namespace taskdist::detail {

/// moodycamel's bulk dequeue writes through an output iterator by
/// assignment; this one emplaces into `std::optional<T>`s instead, so T
/// needs no default constructor. Each target must be empty.
template <class T>
struct OptionalFiller {
    std::optional<T>* at;
    OptionalFiller& operator*() noexcept { return *this; }
    OptionalFiller& operator=(T&& value) noexcept(std::is_nothrow_move_constructible_v<T>) {
        at->emplace(std::move(value));
        return *this;
    }
    OptionalFiller& operator++() noexcept {
        ++at;
        return *this;
    }
    OptionalFiller operator++(int) noexcept {
        OptionalFiller old = *this;
        ++at;
        return old;
    }
};

} // namespace taskdist::detail
