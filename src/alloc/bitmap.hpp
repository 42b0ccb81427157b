// Bit runs over arrays of 64-bit words, as the pool's granule bitmaps need
// them: bit i lives in word i / 64 at position i % 64.
#pragma once

#include <cstddef>
#include <cstdint>

namespace scxkit::internal::bitmap {

inline bool test(const std::uint64_t* w, std::size_t i) {
  return (w[i / 64] >> (i % 64)) & 1;
}
void set_range(std::uint64_t* w, std::size_t first, std::size_t n);
void clear_range(std::uint64_t* w, std::size_t first, std::size_t n);
// The first set (clear) bit at or after `from`, or nbits when there is none.
std::size_t next_set(const std::uint64_t* w, std::size_t nbits, std::size_t from);
std::size_t next_clear(const std::uint64_t* w, std::size_t nbits, std::size_t from);
// The first of `n` consecutive clear bits, or nbits when no run is that long.
std::size_t find_clear_run(const std::uint64_t* w, std::size_t nbits, std::size_t n);
std::size_t count_set(const std::uint64_t* w, std::size_t nbits);

}  // namespace scxkit::internal::bitmap
