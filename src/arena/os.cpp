#include "arena/os.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "arena/os_fault_injection.hpp"

namespace scxkit::internal::os {

namespace {
// Not in Debian 12's headers; values from the 6.13 uapi.
constexpr int kMadvGuardInstall = 102;
constexpr int kMadvGuardRemove = 103;

// Failures tests ask for (os_fault_injection.hpp): per call, the errno to
// fail with and how many calls still fail. Lock-free: the fault handler and
// the view server make these calls too.
struct Injected {
  std::atomic<int> err{0};
  std::atomic<int> left{0};
};
Injected g_injected[static_cast<int>(testing::Call::count)];

// An injected errno for this call, or 0.
int injected(testing::Call c) noexcept {
  Injected& i = g_injected[static_cast<int>(c)];
  int left = i.left.load(std::memory_order_relaxed);
  while (left > 0) {
    if (i.left.compare_exchange_weak(left, left - 1)) return i.err.load();
  }
  return 0;
}
}  // namespace

namespace testing {
void fail_next(Call c, int err, int times) noexcept {
  g_injected[static_cast<int>(c)].err.store(err);
  g_injected[static_cast<int>(c)].left.store(times);
}
}  // namespace testing

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

Result<std::uintptr_t> map_file(std::size_t size, int fd, std::uint64_t offset) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                   static_cast<off_t>(offset));
  if (p == MAP_FAILED) return os_error("mapping a file", errno);
  return reinterpret_cast<std::uintptr_t>(p);
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

Result<int> open_rw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return os_error(fmt::format("opening {}", path), errno);
  return fd;
}

Result<int> create_unnamed(const char* dir) {
  const int fd = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return os_error(fmt::format("creating an unnamed file in {}", dir), errno);
  return fd;
}

Result<int> create_memfd(const char* name) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return os_error("memfd_create", errno);
  return fd;
}

int link_fd(int fd, const std::string& path) noexcept {
  char self[32];
  std::snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
  return ::linkat(AT_FDCWD, self, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
}

int unlink_path(const std::string& path) noexcept {
  return ::unlink(path.c_str()) == 0 ? 0 : errno;
}

bool same_file(int fd, const std::string& path) noexcept {
  struct stat ours {
  }, named{};
  return ::fstat(fd, &ours) == 0 && ::stat(path.c_str(), &named) == 0 &&
         ours.st_dev == named.st_dev && ours.st_ino == named.st_ino;
}

Result<void> resize_file(int fd, std::uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return os_error("sizing a file", errno);
  return {};
}

Result<std::uint64_t> file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return os_error("fstat", errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Result<std::vector<std::string>> list_dir(const char* dir) {
  DIR* d = ::opendir(dir);
  if (d == nullptr) return os_error(fmt::format("listing {}", dir), errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  const int e = errno;
  ::closedir(d);
  if (e != 0) return os_error(fmt::format("listing {}", dir), e);
  return names;
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
  if (const int e = injected(testing::Call::punch_hole); e != 0) return e;
  return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(size)) == 0
             ? 0
             : errno;
}

int instantiate(int fd, std::uint64_t offset, std::uint64_t size) noexcept {
  if (const int e = injected(testing::Call::instantiate); e != 0) return e;
  return ::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(size)) == 0 ? 0 : errno;
}

Result<int> userfaultfd_open() {
  int uffd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0 && errno == EPERM) {
    uffd =
        static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  }
  if (uffd < 0) {
    return make_error(Errc::unsupported,
                      fmt::format("userfaultfd is not available ({}); the arena needs it to see "
                                  "accesses to missing pages (Linux 5.11+, not blocked by seccomp)",
                                  std::strerror(errno)));
  }
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(uffd, UFFDIO_API, &api) != 0) {
    const int e = errno;
    ::close(uffd);
    return os_error("UFFDIO_API", e);
  }
  if ((api.features & UFFD_FEATURE_MISSING_SHMEM) == 0) {
    ::close(uffd);
    return make_error(Errc::unsupported,
                      "this kernel's userfaultfd cannot watch shared memory (Linux 4.11+)");
  }
  return uffd;
}

Result<void> userfaultfd_register(int uffd, std::uintptr_t addr, std::size_t size) {
  uffdio_register reg{};
  reg.range.start = addr;
  reg.range.len = size;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    return os_error("registering the arena's views with userfaultfd", errno);
  }
  return {};
}

std::int64_t userfaultfd_next_fault(int uffd) noexcept {
  for (;;) {
    uffd_msg msg{};
    const ssize_t n = ::read(uffd, &msg, sizeof(msg));
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    if (n != sizeof(msg)) return -EIO;
    if (msg.event == UFFD_EVENT_PAGEFAULT) {
      return static_cast<std::int64_t>(msg.arg.pagefault.address);
    }
  }
}

int userfaultfd_wake(int uffd, std::uintptr_t addr, std::size_t size) noexcept {
  uffdio_range range{addr, size};
  return ::ioctl(uffd, UFFDIO_WAKE, &range) == 0 ? 0 : errno;
}

Result<int> event_open() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return os_error("creating an eventfd", errno);
  return fd;
}

void event_signal(int fd) noexcept {
  const std::uint64_t one = 1;
  // Fails only when the counter would overflow: it is readable then anyway.
  (void)!::write(fd, &one, sizeof(one));
}

bool wait_readable_or_stopped(int fd, int stop_fd) noexcept {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno != EINTR) sleep_ns(1'000'000);
      continue;
    }
    if ((fds[1].revents & POLLIN) != 0) return true;
    if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) return false;
  }
}

Result<pthread_t> start_thread_without_signals(void* (*fn)(void*), void* arg, const char* what) {
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread{};
  const int rc = ::pthread_create(&thread, nullptr, fn, arg);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) return os_error(fmt::format("starting {}", what), rc);
  return thread;
}

void join_thread(pthread_t thread) noexcept {
  ::pthread_join(thread, nullptr);
}

namespace {
struct flock range_lock(LockKind kind, std::uint64_t offset, std::uint64_t size) {
  struct flock fl {};
  fl.l_type =
      kind == LockKind::shared ? F_RDLCK : (kind == LockKind::exclusive ? F_WRLCK : F_UNLCK);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = static_cast<off_t>(size);
  return fl;
}
}  // namespace

int ofd_lock(int fd, LockKind kind, std::uint64_t offset, std::uint64_t size, bool wait) noexcept {
  struct flock fl = range_lock(kind, offset, size);
  for (;;) {
    if (::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

bool ofd_lock_conflicts(int fd, LockKind kind, std::uint64_t offset, std::uint64_t size) noexcept {
  struct flock fl = range_lock(kind, offset, size);
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

Result<int> reopen(int fd) {
  const std::string path = fmt::format("/proc/self/fd/{}", fd);
  const int own = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (own < 0) return os_error(fmt::format("reopening {}", path), errno);
  return own;
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

void yield_cpu() noexcept {
  ::sched_yield();
}

void sleep_ns(std::uint64_t ns) noexcept {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  ::nanosleep(&ts, nullptr);
}

int mutex_lock_for(pthread_mutex_t* m, std::uint64_t timeout_ns) noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const std::uint64_t at = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull +
                           static_cast<std::uint64_t>(now.tv_nsec) + timeout_ns;
  const timespec until{static_cast<time_t>(at / 1'000'000'000),
                       static_cast<long>(at % 1'000'000'000)};
  return ::pthread_mutex_timedlock(m, &until);
}

std::uint64_t page_table_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  std::uint64_t kib = 0;
  while (status >> key) {
    if (key == "VmPTE:" && status >> kib) return kib * 1024;
    status.ignore(4096, '\n');
  }
  return 0;
}

}  // namespace scxkit::internal::os
