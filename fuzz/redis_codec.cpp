// Fuzz target: every built-in codec of include/taskdist/redis/codec.hpp.
// A worker decodes bodies that anyone with access to the stream could have
// written, and a client decodes results, so decode() must take any bytes.
//
// Input: the bytes to decode, given to every codec in turn (each arithmetic
// codec accepts only inputs of its own size).
//
// Checks: DecodeError is the only exception; an arithmetic codec accepts
// exactly the inputs of its size (bool: only 0 and 1); whatever decodes
// encodes back to the same bytes (long double: its value bytes, then zeros
// where it has padding) and decodes again to the same bit pattern, NaN
// payloads included.
#include "support.hpp"

#include <taskdist/redis/codec.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

using taskdist::redis::Codec;
using taskdist::redis::DecodeError;
using taskdist::redis::detail::value_size;  // the bytes that carry a value: the rest is padding no round trip keeps

template <class T>
bool same_bits(const T& a, const T& b) {
    unsigned char x[sizeof(T)], y[sizeof(T)];
    std::memcpy(x, &a, sizeof(T));
    std::memcpy(y, &b, sizeof(T));
    return std::memcmp(x, y, value_size<T>()) == 0;
}

template <class T>
void check_arithmetic(std::string_view bytes, const char* type) {
    T v{};
    try {
        v = Codec<T>::decode(bytes);
    } catch (const DecodeError&) {
        const bool wrong_size = bytes.size() != sizeof(T);
        const bool bad_bool = std::is_same_v<T, bool> && bytes.size() == 1 && bytes[0] != 0 && bytes[0] != 1;
        fuzz::expect(wrong_size || bad_bool, "refused an input it should read", type);
        return;
    }
    fuzz::expect(bytes.size() == sizeof(T), "accepted an input of the wrong size", type);
    const std::string again = Codec<T>::encode(v);
    fuzz::expect(again.size() == sizeof(T), "encode() gave the wrong size", type);
    fuzz::expect(std::memcmp(again.data(), bytes.data(), value_size<T>()) == 0, "encode(decode(b)) != b", type);
    // The object as the input's bytes lay it out, padding and all: its
    // encoding must carry the value and zeros, never the padding.
    T raw;
    std::memcpy(&raw, bytes.data(), sizeof(T));
    const std::string from_raw = Codec<T>::encode(raw);
    fuzz::expect(std::memcmp(from_raw.data(), bytes.data(), value_size<T>()) == 0, "encode() lost the value", type);
    for (std::size_t i = value_size<T>(); i < sizeof(T); ++i) {
        fuzz::expect(from_raw[i] == 0, "encode() sent padding bytes", type);
        fuzz::expect(again[i] == 0, "encode() sent padding bytes", type);
    }
    const T w = Codec<T>::decode(again);
    fuzz::expect(same_bits(v, w), "decode(encode(v)) != v", type);
    if constexpr (std::is_floating_point_v<T>) {
        // Bit equality implies value equality except for NaN, which compares unequal to itself.
        // cppcheck-suppress invalidFunctionArgBool ; cppcheck 2.10 ignores the if constexpr: T is floating point here
        fuzz::expect(v == w || (std::isnan(v) && std::isnan(w)), "decode(encode(v)) is not the same number", type);
    }
}

template <class Bytes>
void check_sequence(std::string_view bytes, const char* type) {
    Bytes v;
    try {
        v = Codec<Bytes>::decode(bytes);
    } catch (const DecodeError&) {
        fuzz::fail("a byte sequence codec refused an input", type);
    }
    fuzz::expect(v.size() == bytes.size(), "decode() changed the length", type);
    const std::string again = Codec<Bytes>::encode(v);
    fuzz::expect(again == bytes, "encode(decode(b)) != b", type);
    fuzz::expect(Codec<Bytes>::decode(again) == v, "decode(encode(v)) != v", type);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes = fuzz::as_text(data, size);
    check_arithmetic<bool>(bytes, "bool");
    check_arithmetic<char>(bytes, "char");
    check_arithmetic<signed char>(bytes, "signed char");
    check_arithmetic<unsigned char>(bytes, "unsigned char");
    check_arithmetic<char8_t>(bytes, "char8_t");
    check_arithmetic<char16_t>(bytes, "char16_t");
    check_arithmetic<char32_t>(bytes, "char32_t");
    check_arithmetic<wchar_t>(bytes, "wchar_t");
    check_arithmetic<short>(bytes, "short");
    check_arithmetic<unsigned short>(bytes, "unsigned short");
    check_arithmetic<int>(bytes, "int");
    check_arithmetic<unsigned>(bytes, "unsigned");
    check_arithmetic<long>(bytes, "long");
    check_arithmetic<unsigned long>(bytes, "unsigned long");
    check_arithmetic<long long>(bytes, "long long");
    check_arithmetic<unsigned long long>(bytes, "unsigned long long");
    check_arithmetic<float>(bytes, "float");
    check_arithmetic<double>(bytes, "double");
    check_arithmetic<long double>(bytes, "long double");
    check_sequence<std::string>(bytes, "std::string");
    check_sequence<std::vector<std::uint8_t>>(bytes, "std::vector<std::uint8_t>");
    check_sequence<std::vector<std::byte>>(bytes, "std::vector<std::byte>");
    return 0;
}
