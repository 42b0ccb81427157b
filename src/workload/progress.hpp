// The worker side of the shared statistics: one Progress per worker thread
// counts ops, measures the gaps between the worker's checkpoints (any of its
// threads: a worker is stuck when none of them progresses) and records the
// CPU it is on under the current placement epoch. Internal.
#pragma once

#include <sched.h>
#include <time.h>

#include <cstdint>

#include "workload/shared_stats.hpp"

namespace scxkit::internal {

inline std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline void atomic_max(std::atomic<std::uint64_t>& cell, std::uint64_t v) {
  std::uint64_t cur = cell.load(std::memory_order_relaxed);
  while (v > cur && !cell.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

class Progress {
 public:
  Progress(WorkerSlot& slot, const SharedHeader& header) : slot_(slot), header_(header) {}

  // One unit of work finished now.
  void checkpoint() { mark(monotonic_ns()); }
  // The thread slept on purpose until `target_ns`: the wait before that is not
  // a gap; the lateness after it is a wake latency and part of the gap.
  void woke_after_sleep(std::uint64_t target_ns) {
    const std::uint64_t now = monotonic_ns();
    slot_.wake.record(now > target_ns ? now - target_ns : 0);
    slot_.last_progress_ns.store(target_ns < now ? target_ns : now, std::memory_order_relaxed);
    mark(now);
  }
  // Another thread woke this one at `sent_ns`; the wait for the partner counts
  // as a gap only through the round trip of whoever checkpoints it.
  void woke_by_partner(std::uint64_t sent_ns) {
    if (sent_ns == 0) return;  // the first turn: nobody handed it over
    const std::uint64_t now = monotonic_ns();
    slot_.wake.record(now > sent_ns ? now - sent_ns : 0);
  }

 private:
  void mark(std::uint64_t now) {
    // The epoch is read before the CPU: a sample taken under the new epoch was
    // taken after the runner's placement change had completed.
    std::uint32_t epoch = header_.epoch.load(std::memory_order_acquire);
    if (epoch >= WorkerSlot::kEpochs) epoch = WorkerSlot::kEpochs - 1;
    const int cpu = sched_getcpu();
    if (cpu >= 0 && cpu < static_cast<int>(64 * WorkerSlot::kCpuWords)) {
      auto& word = slot_.ran_on[epoch][cpu / 64];
      const std::uint64_t bit = std::uint64_t{1} << (cpu % 64);
      if ((word.load(std::memory_order_relaxed) & bit) == 0) {
        word.fetch_or(bit, std::memory_order_relaxed);
      }
      if (cpu != last_cpu_ && last_cpu_ >= 0) {
        slot_.cpu_switches.fetch_add(1, std::memory_order_relaxed);
      }
      last_cpu_ = cpu;
    }
    const std::uint64_t last = slot_.last_progress_ns.exchange(now, std::memory_order_relaxed);
    const std::uint64_t gap = now > last ? now - last : 0;
    if (gap > slot_.max_gap_ns.load(std::memory_order_relaxed)) {
      atomic_max(slot_.max_gap_ns, gap);
      slot_.max_gap_at_ns.store(now, std::memory_order_relaxed);
    }
    slot_.ops.fetch_add(1, std::memory_order_relaxed);
  }

  WorkerSlot& slot_;
  const SharedHeader& header_;
  int last_cpu_ = -1;
};

// The CPU-spin unit: about 10-20 us of dependent integer arithmetic. The bare
// benchmark runs the very same function.
std::uint64_t spin_op(std::uint64_t seed);

}  // namespace scxkit::internal
