// taskdist::redis: how tasks and results cross the wire.
//
// Codec<T> turns a T into bytes and back. Built in: arithmetic types (fixed
// width, little-endian, so machines of either byte order agree), std::string,
// and byte vectors (std::vector<std::uint8_t>, std::vector<std::byte>), and
// void results. Specialise Codec for your own types:
//
//   template <> struct taskdist::redis::Codec<Point> {
//       static std::string encode(const Point& p) { ... }
//       static Point decode(std::string_view bytes) { ... }  // throw DecodeError on bad input
//   };
//
// decode() must accept any bytes without undefined behaviour: a message that
// does not decode is dead-lettered with the DecodeError's reason, and the
// worker keeps serving.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace taskdist::redis {

/// Bytes that are not a valid encoding of the type asked for.
struct DecodeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T, class = void>
struct Codec;  // no default: a type without a codec fails to compile, naming Codec<T>

namespace detail {
template <class T>
std::string describe_size_mismatch(std::size_t got) {
    return "taskdist::redis: expected " + std::to_string(sizeof(T)) + " bytes for an arithmetic value, got " +
           std::to_string(got);
}

/// Bytes of T that hold its value. x86's 80-bit long double fills 10 of its
/// 12 or 16; the rest is padding holding whatever the stack held before,
/// which must not go over the wire.
template <class T>
constexpr std::size_t value_size() {
    if constexpr (std::is_same_v<T, long double> && std::numeric_limits<long double>::digits == 64 &&
                  std::endian::native == std::endian::little) {
        return 10;
    } else {
        return sizeof(T);
    }
}

} // namespace detail

template <class T>
struct Codec<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
    static std::string encode(const T& v) {
        std::string out(sizeof(T), '\0');
        std::memcpy(out.data(), &v, detail::value_size<T>());
        if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
            for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(out[i], out[sizeof(T) - 1 - i]);
        }
        return out;
    }
    static T decode(std::string_view bytes) {
        if (bytes.size() != sizeof(T)) throw DecodeError(detail::describe_size_mismatch<T>(bytes.size()));
        std::string b(bytes);
        if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
            for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
        }
        T v;
        std::memcpy(&v, b.data(), sizeof(T));
        if constexpr (std::is_same_v<T, bool>) {
            if (b[0] != 0 && b[0] != 1) throw DecodeError("taskdist::redis: a bool must be 0 or 1");
        }
        return v;
    }
};

template <>
struct Codec<std::string> {
    static std::string encode(const std::string& v) { return v; }
    static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

template <>
struct Codec<std::vector<std::uint8_t>> {
    static std::string encode(const std::vector<std::uint8_t>& v) { return std::string(v.begin(), v.end()); }
    static std::vector<std::uint8_t> decode(std::string_view bytes) {
        return std::vector<std::uint8_t>(bytes.begin(), bytes.end());
    }
};

template <>
struct Codec<std::vector<std::byte>> {
    static std::string encode(const std::vector<std::byte>& v) {
        std::string out(v.size(), '\0');
        if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
        return out;
    }
    static std::vector<std::byte> decode(std::string_view bytes) {
        std::vector<std::byte> out(bytes.size());
        if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
        return out;
    }
};

/// For handlers that return nothing: the result is empty bytes.
template <>
struct Codec<void> {};

/// A codec exists for T when Codec<T> has encode and decode.
template <class T>
concept Encodable = requires(const T& v, std::string_view b) {
    { Codec<T>::encode(v) } -> std::convertible_to<std::string>;
    { Codec<T>::decode(b) } -> std::convertible_to<T>;
};

} // namespace taskdist::redis
