// The slab allocator's size classes: 8-byte steps up to 64 bytes, then four
// classes per doubling up to one page, so internal waste stays under 25%.
// A size rounded up to a multiple of 16, 32 or 64 always lands on a class that
// is a multiple of it, which is what lets alignment requests up to 64 be
// served by rounding the size up.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace scxkit::internal {

inline constexpr std::array<std::uint32_t, 32> kClassSizes = {
    8,   16,  24,  32,  40,  48,  56,  64,   80,   96,   112,  128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096};
inline constexpr std::uint32_t kClassCount = kClassSizes.size();
inline constexpr std::uint32_t kMaxSmallSize = kClassSizes.back();

// ceil(2^32 / size) per class: `delta` is a multiple of the size exactly when
// ((delta * inverse) >> 32) * size == delta, for any 32-bit delta. One
// multiply instead of a division on every free.
inline constexpr auto kClassInverse = [] {
  std::array<std::uint32_t, kClassCount> t{};
  for (std::uint32_t c = 0; c < kClassCount; ++c) {
    t[c] = static_cast<std::uint32_t>(((std::uint64_t{1} << 32) + kClassSizes[c] - 1) /
                                      kClassSizes[c]);
  }
  return t;
}();

// Class index for sizes 1..1024 in 8-byte steps; larger sizes search the tail.
inline constexpr auto kSmallClassTable = [] {
  std::array<std::uint8_t, 1024 / 8 + 1> t{};
  std::uint32_t c = 0;
  for (std::uint32_t i = 0; i < t.size(); ++i) {
    while (kClassSizes[c] < i * 8) ++c;
    t[i] = static_cast<std::uint8_t>(c);
  }
  return t;
}();

// The class of a request of 1..kMaxSmallSize bytes.
inline std::uint32_t size_class_of(std::size_t size) {
  if (size <= 1024) return kSmallClassTable[(size + 7) >> 3];
  std::uint32_t c = kSmallClassTable.back() + 1;
  while (kClassSizes[c] < size) ++c;
  return c;
}

}  // namespace scxkit::internal
