#include "alloc/shared_lock.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "arena/os.hpp"
#include "harness/child_process.hpp"

namespace scxkit::internal {

Result<LockTaken> shared_lock(std::atomic<std::uint32_t>& word, std::uint32_t self_pid,
                              std::uint64_t deadline_ns) {
  std::uint32_t expected = 0;
  if (word.compare_exchange_strong(expected, self_pid, std::memory_order_acquire)) {
    return LockTaken::clean;
  }
  const std::uint64_t start = os::monotonic_ns();
  for (std::uint32_t spins = 1;; ++spins) {
    expected = word.load(std::memory_order_relaxed);
    if (expected == 0) {
      if (word.compare_exchange_weak(expected, self_pid, std::memory_order_acquire)) {
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
    // Liveness is a system call: ask now and then, never about ourselves.
    if (spins % 16 == 0 && expected != self_pid && process_gone(expected)) {
      if (word.compare_exchange_strong(expected, self_pid, std::memory_order_acquire)) {
        return LockTaken::from_dead_holder;
      }
      continue;
    }
    if (spins % 16 == 0 && os::monotonic_ns() - start > deadline_ns) {
      return make_error(Errc::busy,
                        fmt::format("an arena allocator lock stayed held by live process {} for "
                                    "over {} s; that process is stuck inside the allocator",
                                    expected, deadline_ns / 1'000'000'000));
    }
  }
}

bool process_gone(std::uint32_t pid) {
  const auto p = static_cast<pid_t>(pid);
  if (!os::process_alive(p)) return true;
  const char state = process_state(p);
  return state == 'Z' || state == 'X';
}

void shared_unlock(std::atomic<std::uint32_t>& word) {
  word.store(0, std::memory_order_release);
}

}  // namespace scxkit::internal
