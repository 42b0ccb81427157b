#include "alloc/bitmap.hpp"

#include <algorithm>
#include <bit>

namespace scxkit::internal::bitmap {

namespace {

// Bits [lo, hi) of one word set, 0 <= lo < hi <= 64.
std::uint64_t mask(std::size_t lo, std::size_t hi) {
  const std::uint64_t upper = hi == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << hi) - 1;
  return upper & ~((std::uint64_t{1} << lo) - 1);
}

template <bool kSet>
void apply(std::uint64_t* w, std::size_t first, std::size_t n) {
  std::size_t i = first;
  const std::size_t end = first + n;
  while (i < end) {
    const std::size_t word = i / 64;
    const std::size_t hi = std::min<std::size_t>(64, end - word * 64);
    const std::uint64_t m = mask(i % 64, hi);
    if constexpr (kSet) {
      w[word] |= m;
    } else {
      w[word] &= ~m;
    }
    i = word * 64 + hi;
  }
}

template <bool kWantSet>
std::size_t next(const std::uint64_t* w, std::size_t nbits, std::size_t from) {
  for (std::size_t i = from; i < nbits;) {
    const std::size_t word = i / 64;
    std::uint64_t bits = kWantSet ? w[word] : ~w[word];
    bits &= ~std::uint64_t{0} << (i % 64);
    if (bits != 0) {
      const std::size_t found = word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
      return found < nbits ? found : nbits;
    }
    i = (word + 1) * 64;
  }
  return nbits;
}

}  // namespace

void set_range(std::uint64_t* w, std::size_t first, std::size_t n) {
  apply<true>(w, first, n);
}
void clear_range(std::uint64_t* w, std::size_t first, std::size_t n) {
  apply<false>(w, first, n);
}

std::size_t next_set(const std::uint64_t* w, std::size_t nbits, std::size_t from) {
  return next<true>(w, nbits, from);
}

std::size_t next_clear(const std::uint64_t* w, std::size_t nbits, std::size_t from) {
  return next<false>(w, nbits, from);
}

std::size_t find_clear_run(const std::uint64_t* w, std::size_t nbits, std::size_t n) {
  if (n == 0 || n > nbits) return nbits;
  for (std::size_t from = 0;;) {
    const std::size_t start = next_clear(w, nbits, from);
    if (start + n > nbits) return nbits;
    const std::size_t stop = next_set(w, start + n, start);
    if (stop == start + n) return start;
    from = stop;
  }
}

std::size_t count_set(const std::uint64_t* w, std::size_t nbits) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < nbits / 64; ++i) count += std::popcount(w[i]);
  if (nbits % 64 != 0) count += std::popcount(w[nbits / 64] & mask(0, nbits % 64));
  return count;
}

}  // namespace scxkit::internal::bitmap
