#include "alloc/shared_lock.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "arena/os.hpp"

namespace scxkit::internal {

Result<LockTaken> shared_lock(std::atomic<std::uint64_t>& word, ProcessId self,
                              std::uint64_t deadline_ns) {
  const std::uint64_t me = self.packed();
  std::uint64_t expected = 0;
  if (word.compare_exchange_strong(expected, me, std::memory_order_acquire)) {
    return LockTaken::clean;
  }
  const std::uint64_t start = os::monotonic_ns();
  for (std::uint32_t spins = 1;; ++spins) {
    expected = word.load(std::memory_order_relaxed);
    if (expected == 0) {
      if (word.compare_exchange_weak(expected, me, std::memory_order_acquire)) {
        return LockTaken::clean;
      }
      continue;
    }
    if (spins < 64) {
      __builtin_ia32_pause();
      continue;
    }
    // The holder may be waiting for a CPU (or for another process): yield a
    // little, then sleep, so that waiters do not starve it.
    if (spins < 96) {
      os::yield_cpu();
    } else {
      os::sleep_ns(
          std::min<std::uint64_t>(std::uint64_t{1000} << std::min(spins - 96, 10u), 1'000'000));
    }
    if (spins % 16 != 0) continue;
    // Liveness is a system call: ask now and then, never about ourselves.
    const ProcessId holder = ProcessId::unpack(expected);
    if (holder != self && process_gone(holder)) {
      if (word.compare_exchange_strong(expected, me, std::memory_order_acquire)) {
        return LockTaken::from_dead_holder;
      }
      continue;
    }
    if (os::monotonic_ns() - start > deadline_ns) {
      return make_error(Errc::busy,
                        fmt::format("an arena allocator lock stayed held by live process {} for "
                                    "over {} s; that process is stuck inside the allocator",
                                    holder.pid, deadline_ns / 1'000'000'000));
    }
  }
}

void shared_unlock(std::atomic<std::uint64_t>& word) {
  word.store(0, std::memory_order_release);
}

}  // namespace scxkit::internal
