// Timing helpers shared by the bench commands.
#pragma once

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "scxkit/arena.hpp"

namespace scxkit::cli {

using Clock = std::chrono::steady_clock;

inline std::uint64_t ns_since(Clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// CPU time of the calling thread: on a loaded machine it leaves out the time
// the thread waited for a CPU, which wall time does not.
inline std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t percentile(std::vector<std::uint64_t> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Progress on a terminal only; logs and pipes get the results alone.
inline void progress(const char* what, std::uint64_t done, std::uint64_t total) {
  if (isatty(STDERR_FILENO) == 0 || *what == '\0') return;
  fmt::print(stderr, "\r{}: {:3}%", what, done * 100 / std::max<std::uint64_t>(total, 1));
  if (done == total) fmt::print(stderr, "\r\033[K");
}

// Memory the arena's file holds now.
inline std::uint64_t arena_resident_mib(const Arena& a) {
  struct stat st {};
  fstat(a.fd(), &st);
  return static_cast<std::uint64_t>(st.st_blocks) * 512 >> 20;
}

}  // namespace scxkit::cli
