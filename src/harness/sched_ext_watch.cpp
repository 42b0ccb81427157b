#include "harness/sched_ext_watch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace scxkit::internal {

namespace {
constexpr long kSysfsMagic = 0x62656572;
constexpr std::uint32_t kMask =
    IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF;
constexpr std::chrono::milliseconds kMaxCadence{50};  // detection within 100 ms even without events
}  // namespace

SchedExtWatch::SchedExtWatch(std::string root) : root_(std::move(root)) {
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  add_watches();
}

SchedExtWatch::~SchedExtWatch() {
  if (inotify_ >= 0) close(inotify_);
  if (ops_fd_ >= 0) close(ops_fd_);
}

void SchedExtWatch::add_watches() {
  if (inotify_ >= 0 && !watching_root_dir_) {
    watching_root_dir_ = inotify_add_watch(inotify_, root_.c_str(), kMask) >= 0;
  }
  const std::string ops_dir = root_ + "/root";
  if (inotify_ >= 0 && !watching_ops_dir_) {
    watching_ops_dir_ = inotify_add_watch(inotify_, ops_dir.c_str(), kMask) >= 0;
  }
  if (ops_fd_ < 0) {
    struct statfs fs {};
    if (statfs(ops_dir.c_str(), &fs) == 0 && fs.f_type == kSysfsMagic) {
      // Only a sysfs attribute raises POLLPRI; a regular file always polls ready.
      ops_fd_ = open((ops_dir + "/ops").c_str(), O_RDONLY | O_CLOEXEC);
    }
  }
}

SchedExtStatus SchedExtWatch::read() {
  add_watches();  // `root` may have appeared since
  if (ops_fd_ >= 0) {
    char buf[64];
    lseek(ops_fd_, 0, SEEK_SET);  // re-arms POLLPRI
    if (::read(ops_fd_, buf, sizeof(buf)) < 0 && errno == ENODEV) {
      close(ops_fd_);  // the root kobject went away with the scheduler
      ops_fd_ = -1;
    }
  }
  return read_sched_ext_status(root_);
}

bool fd_ready(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

void SchedExtWatch::wait(std::initializer_list<int> extra_fds, Clock::time_point deadline) {
  pollfd fds[4];
  nfds_t n = 0;
  if (inotify_ >= 0) fds[n++] = {inotify_, POLLIN, 0};
  if (ops_fd_ >= 0) fds[n++] = {ops_fd_, POLLPRI, 0};
  for (int fd : extra_fds) {
    if (fd >= 0 && n < std::size(fds)) fds[n++] = {fd, POLLIN, 0};
  }
  const auto now = Clock::now();
  const auto until = std::min(deadline, now + cadence_);
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  const int ready = poll(fds, n, static_cast<int>(std::max<long long>(ms, 0)));
  if (ready > 0 && inotify_ >= 0 && (fds[0].revents & POLLIN) != 0) {
    alignas(inotify_event) char events[4096];
    while (::read(inotify_, events, sizeof(events)) > 0) {
    }
    cadence_ = std::chrono::milliseconds(2);  // something moves: look again soon
  } else if (ready == 0) {
    cadence_ = std::min(cadence_ * 2, kMaxCadence);
  }
  // A deleted directory drops its watch; watch again when it comes back.
  struct stat st {};
  if (watching_ops_dir_ && stat((root_ + "/root").c_str(), &st) != 0) watching_ops_dir_ = false;
}

KernelLogTail::KernelLogTail(const std::string& path) {
  if (path.empty()) return;
  fd_ = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return;
  struct stat st {};
  kmsg_ = fstat(fd_, &st) == 0 && S_ISCHR(st.st_mode);
  lseek(fd_, 0, SEEK_END);  // only what happens from now on
}

KernelLogTail::~KernelLogTail() {
  if (fd_ >= 0) close(fd_);
}

std::string KernelLogTail::read_new(std::size_t max_bytes) {
  std::string out;
  if (fd_ < 0) return out;
  if (!kmsg_) {
    // Skip what lies beyond the last max_bytes: only the end can hold the exit.
    struct stat st {};
    const off_t at = lseek(fd_, 0, SEEK_CUR);
    if (at >= 0 && fstat(fd_, &st) == 0 && st.st_size - at > static_cast<off_t>(max_bytes)) {
      lseek(fd_, st.st_size - static_cast<off_t>(max_bytes), SEEK_SET);
    }
  }
  char buf[8192];
  while (out.size() < max_bytes) {
    const ssize_t n = ::read(fd_, buf, std::min(sizeof(buf), max_bytes - out.size()));
    if (n < 0 && errno == EPIPE) continue;  // kmsg records were overwritten; go on
    if (n <= 0) break;
    std::string_view record(buf, static_cast<std::size_t>(n));
    if (kmsg_) {
      // "prio,seq,usec,flags;message\n" (continuation lines start with a space)
      const auto semi = record.find(';');
      if (semi != std::string_view::npos) record.remove_prefix(semi + 1);
      const auto nl = record.find('\n');
      out.append(record.substr(0, nl == std::string_view::npos ? record.size() : nl + 1));
    } else {
      out.append(record);
    }
  }
  return out;
}

}  // namespace scxkit::internal
