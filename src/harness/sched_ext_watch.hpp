// Waits for /sys/kernel/sched_ext to change, promptly: inotify on the tree
// (the `root` directory appearing, `state` and `ops` rewritten in a fake
// tree), POLLPRI on a real sysfs `root/ops` (sysfs_notify), and a capped
// re-check cadence as the safety net for changes neither reports.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>

#include "harness/child_process.hpp"
#include "harness/log_tail.hpp"
#include "scxkit/sched_ext.hpp"

namespace scxkit::internal {

class SchedExtWatch {
 public:
  explicit SchedExtWatch(std::string root);
  ~SchedExtWatch();
  SchedExtWatch(const SchedExtWatch&) = delete;
  SchedExtWatch& operator=(const SchedExtWatch&) = delete;

  SchedExtStatus read();
  // Sleeps until the tree may have changed, one of `extra_fds` (a pidfd, a
  // stop request; -1 for none) becomes readable, the next re-check is due, or
  // the deadline.
  void wait(std::initializer_list<int> extra_fds, Clock::time_point deadline);

 private:
  void add_watches();

  std::string root_;
  int inotify_ = -1;
  bool watching_root_dir_ = false;
  bool watching_ops_dir_ = false;
  int ops_fd_ = -1;  // open on a real sysfs ops attribute, for POLLPRI
  std::chrono::milliseconds cadence_{2};
};

// New kernel log text since construction: /dev/kmsg records, or lines
// appended to a plain file (tests). Never blocks.
// True when `fd` (-1: never) is readable, hung up or in error: a stop request.
bool fd_ready(int fd);

class KernelLogTail {
 public:
  explicit KernelLogTail(const std::string& path);
  ~KernelLogTail();
  KernelLogTail(const KernelLogTail&) = delete;
  KernelLogTail& operator=(const KernelLogTail&) = delete;
  std::string read_new(std::size_t max_bytes = kLogWindow);

 private:
  int fd_ = -1;
  bool kmsg_ = false;
};

}  // namespace scxkit::internal
