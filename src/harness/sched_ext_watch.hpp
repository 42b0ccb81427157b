// Waits for /sys/kernel/sched_ext to change, promptly: inotify on the tree
// (the `root` directory appearing, `state` and `ops` rewritten in a fake
// tree), POLLPRI on a real sysfs `root/ops` (sysfs_notify), and a capped
// re-check cadence as the safety net for changes neither reports.
#pragma once

#include <chrono>
#include <string>

#include "harness/child_process.hpp"
#include "scxkit/sched_ext.hpp"

namespace scxkit::internal {

class SchedExtWatch {
 public:
  explicit SchedExtWatch(std::string root);
  ~SchedExtWatch();
  SchedExtWatch(const SchedExtWatch&) = delete;
  SchedExtWatch& operator=(const SchedExtWatch&) = delete;

  SchedExtStatus read();
  // Sleeps until the tree may have changed, `extra_fd` (a pidfd, or -1)
  // becomes readable, the next re-check is due, or the deadline.
  void wait(int extra_fd, Clock::time_point deadline);

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
class KernelLogTail {
 public:
  explicit KernelLogTail(const std::string& path);
  ~KernelLogTail();
  KernelLogTail(const KernelLogTail&) = delete;
  KernelLogTail& operator=(const KernelLogTail&) = delete;
  std::string read_new();

 private:
  int fd_ = -1;
  bool kmsg_ = false;
};

}  // namespace scxkit::internal
