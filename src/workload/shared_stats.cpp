#include "workload/shared_stats.hpp"

#include <bit>

namespace scxkit::internal {

std::size_t LatencyHistogram::bucket_of(std::uint64_t ns) {
  if (ns < 4) return static_cast<std::size_t>(ns);
  const int msb = 63 - std::countl_zero(ns);  // >= 2
  const std::size_t b = static_cast<std::size_t>(msb - 1) * 4 + ((ns >> (msb - 2)) & 3);
  return b < kBuckets ? b : kBuckets - 1;
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t b) {
  if (b < 4) return b;
  const std::size_t msb = b / 4 + 1;
  return (4 + (b % 4)) << (msb - 2);
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t b) {
  return b + 1 < kBuckets ? bucket_low(b + 1) - 1 : UINT64_MAX;
}

std::size_t SharedStats::bytes_for(std::size_t capacity) {
  return kSlotsOffset + capacity * sizeof(WorkerSlot);
}

}  // namespace scxkit::internal
