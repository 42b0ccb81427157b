// A child process in its own process group, watched through a pidfd (or
// /proc/<pid> where pidfd_open is missing), with bounded waits only.
// Internal to the harness.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "scxkit/error.hpp"
#include "scxkit/scheduler.hpp"

namespace scxkit::internal {

using Clock = std::chrono::steady_clock;

class ChildProcess {
 public:
  // Spawns `binary` (searched in PATH) with stdout and stderr appended to
  // `log_path`, as the leader of a new process group. The caller becomes a
  // child subreaper so helpers the child forks are reaped here too.
  static Result<ChildProcess> spawn(const std::string& binary, const std::vector<std::string>& args,
                                    const std::string& log_path, bool use_pidfd);
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Readable when the process exits; -1 when watching through /proc.
  int pidfd() const { return pidfd_; }
  bool has_exited() const;
  // Waits until the process exits or the deadline passes; EINTR never extends it.
  bool wait_exit_until(Clock::time_point deadline) const;
  // Collects the exit status once exited. If the kernel already reaped it
  // (SIGCHLD ignored), the status is unknown.
  ProcessExit reap();
  // Signals the whole process group (helpers included).
  void signal_group(int sig) const;
  // SIGKILLs what is left of the group and reaps it, within the deadline.
  // Returns false if something in the group is still alive at the deadline.
  bool kill_and_reap_group(Clock::time_point deadline);

 private:
  ChildProcess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<ProcessExit> reaped_;
};

// The last `lines` lines of what a file holds past byte `from` ("" if unreadable).
std::string tail_lines(const std::string& path, std::size_t lines, std::uint64_t from = 0);
// The state letter in /proc/<pid>/stat (R, S, D, Z, ...), or '?' if there is none.
char process_state(pid_t pid);

// A file's size now, 0 if it does not exist.
std::uint64_t file_size(const std::string& path);

}  // namespace scxkit::internal
