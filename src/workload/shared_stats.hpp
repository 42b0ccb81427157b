// What a worker process reports through shared memory while it runs: progress,
// the longest gap between progress checkpoints, wake latencies, and the CPUs
// it ran on per placement epoch. The runner maps one region (MAP_SHARED |
// MAP_ANONYMOUS) before forking, so nothing has a name that could outlive the
// run. Writers are the worker's threads; the runner only reads, except for the
// start barrier and the epoch. Internal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace scxkit::internal {

// Wake-latency histogram: four buckets per power of two of nanoseconds, so a
// bucket is at most 25% wide.
struct LatencyHistogram {
  static constexpr std::size_t kBuckets = 4 * 44;  // up to ~2^44 ns = 4.9 hours
  std::atomic<std::uint64_t> counts[kBuckets];

  static std::size_t bucket_of(std::uint64_t ns);
  static std::uint64_t bucket_low(std::size_t b);   // smallest value in bucket b
  static std::uint64_t bucket_high(std::size_t b);  // largest value in bucket b
  void record(std::uint64_t ns) { counts[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed); }
};

struct alignas(64) WorkerSlot {
  static constexpr std::size_t kEpochs = 128;  // later placement epochs share the last one
  static constexpr std::size_t kCpuWords = 4;

  std::atomic<std::uint32_t> go;     // start barrier (futex word): 0 wait, 1 run
  std::atomic<std::uint32_t> ready;  // the worker reached the barrier
  std::atomic<std::uint64_t> ops;    // progress
  std::atomic<std::uint64_t> last_progress_ns;
  std::atomic<std::uint64_t> max_gap_ns;     // longest wait between checkpoints
  std::atomic<std::uint64_t> max_gap_at_ns;  // when that wait ended
  std::atomic<std::uint64_t> cpu_switches;   // consecutive checkpoints on different CPUs
  std::atomic<std::uint64_t> ran_on[kEpochs][kCpuWords];
  LatencyHistogram wake;
  char failure[128];  // set by a worker that could not run its loop
};

struct SharedHeader {
  std::atomic<std::uint32_t> epoch;  // bumped by the runner after every placement change
  std::uint32_t capacity;
};

// The shared region: a header, then `capacity` slots.
class SharedStats {
 public:
  static std::size_t bytes_for(std::size_t capacity);
  explicit SharedStats(void* base) : base_(static_cast<char*>(base)) {}
  SharedHeader& header() const { return *reinterpret_cast<SharedHeader*>(base_); }
  WorkerSlot& slot(std::size_t i) const {
    return reinterpret_cast<WorkerSlot*>(base_ + kSlotsOffset)[i];
  }

 private:
  static constexpr std::size_t kSlotsOffset = 64;
  char* base_;
};

}  // namespace scxkit::internal
