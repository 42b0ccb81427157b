#include "arena/os.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>

namespace scxkit::internal::os {

namespace {
// Not in Debian 12's headers; values from the 6.13 uapi.
constexpr int kMadvGuardInstall = 102;
constexpr int kMadvGuardRemove = 103;
}  // namespace

Result<std::uintptr_t> reserve(std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return os_error("reserving address space", errno);
  return reinterpret_cast<std::uintptr_t>(p);
}

Result<void> map_shared(std::uintptr_t addr, std::size_t size, int fd, std::uint64_t offset,
                        bool replace) {
  const int fixed = replace ? MAP_FIXED : MAP_FIXED_NOREPLACE;
  void* want = reinterpret_cast<void*>(addr);
  void* p = ::mmap(want, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | fixed, fd,
                   static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    if (errno == EEXIST) {
      return make_error(Errc::address_in_use,
                        "the address range is already mapped in this process");
    }
    return os_error("mapping the arena", errno);
  }
  if (p != want) {  // kernels before 4.17 treat NOREPLACE as a hint
    ::munmap(p, size);
    return make_error(Errc::address_in_use, "the address range is already mapped in this process");
  }
  return {};
}

void unmap(std::uintptr_t addr, std::size_t size) {
  if (size != 0) ::munmap(reinterpret_cast<void*>(addr), size);
}

Result<std::uintptr_t> reserve_within_4gib(std::size_t size) {
  constexpr std::uint64_t k4G = std::uint64_t{1} << 32;
  auto span = reserve(2 * size);
  if (!span) return span;
  std::uint64_t start = *span;
  if ((start >> 32) != ((start + size - 1) >> 32)) start = (start + k4G - 1) & ~(k4G - 1);
  unmap(*span, start - *span);
  unmap(start + size, *span + 2 * size - (start + size));
  return start;
}

int online_numa_nodes() {
  // "/sys/devices/system/node/online" reads like "0" or "0-3": one past the last id.
  static const int nodes = [] {
    std::ifstream in("/sys/devices/system/node/online");
    std::string s;
    if (!(in >> s)) return 1;
    const auto sep = s.find_last_of("-,");
    const std::string last = sep == std::string::npos ? s : s.substr(sep + 1);
    int id = 0;
    const auto [end, ec] = std::from_chars(last.data(), last.data() + last.size(), id);
    return ec == std::errc() && end == last.data() + last.size() ? id + 1 : 1;
  }();
  return nodes;
}

int guard_install(std::uintptr_t addr, std::size_t size) noexcept {
  return ::madvise(reinterpret_cast<void*>(addr), size, kMadvGuardInstall) == 0 ? 0 : errno;
}

int guard_remove(std::uintptr_t addr, std::size_t size) noexcept {
  return ::madvise(reinterpret_cast<void*>(addr), size, kMadvGuardRemove) == 0 ? 0 : errno;
}

int punch_hole(int fd, std::uint64_t offset, std::uint64_t size) noexcept {
  return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(size)) == 0
             ? 0
             : errno;
}

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

int current_pid() noexcept {
  return ::getpid();
}

int current_tid() noexcept {
  return static_cast<int>(::syscall(SYS_gettid));
}

bool process_alive(int pid) noexcept {
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

void yield_cpu() noexcept {
  ::sched_yield();
}

void sleep_ns(std::uint64_t ns) noexcept {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  ::nanosleep(&ts, nullptr);
}

}  // namespace scxkit::internal::os
