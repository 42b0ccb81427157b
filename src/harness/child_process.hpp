// A child process in its own process group, watched through a pidfd (or
// /proc/<pid> where pidfd_open is missing), with bounded waits only.
// Internal to the harness.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scxkit/error.hpp"
#include "scxkit/scheduler.hpp"

namespace scxkit::internal {

using Clock = std::chrono::steady_clock;

struct SpawnSpec {
  std::string binary;  // a path, or a name searched in PATH
  std::vector<std::string> args;
  int log_fd = -1;  // stdout and stderr go here (borrowed; the child gets a copy)
  bool use_pidfd = true;
  std::chrono::milliseconds exec_timeout{5000};  // fork to exec done (a binary on a hung mount)
  // cgroup.procs files the child writes "0" to before exec, so nothing it
  // runs is ever outside its cgroup.
  std::vector<std::string> join_procs_files;
};

class ChildProcess {
 public:
  // Forks and execs the binary as the leader of a new process group, with
  // every signal disposition and the mask reset, stdin from /dev/null, and
  // SIGKILL as its parent-death signal: it dies with the thread that spawned
  // it (a thread, not the process — the kernel's rule). Hold a SubreaperHold
  // meanwhile, so helpers the child forks are reaped here too. Each step in
  // the child reports its errno back through a pipe.
  static Result<ChildProcess> spawn(const SpawnSpec& spec);
  // Takes charge of a child this process forked itself (already the leader
  // of its own process group); on failure the child is killed and reaped.
  static Result<ChildProcess> adopt(pid_t pid, bool use_pidfd);
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
  // Reaps `pids` — killed helpers that were reparented to this subreaper —
  // once they are dead; pids that are not our children are waited on until
  // they are gone. False if one is still there at the deadline.
  static bool reap_helpers(std::vector<pid_t> pids, Clock::time_point deadline);

 private:
  ChildProcess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<ProcessExit> reaped_;
};

// Makes this process a child subreaper while any hold exists (helpers of a
// scheduler that dies are reparented here, to be reaped), and restores what
// the flag was before the first hold when the last one goes: the host
// program's own orphans must not become its zombies for good.
class SubreaperHold {
 public:
  static Result<SubreaperHold> acquire();
  SubreaperHold(SubreaperHold&& o) noexcept : held_(std::exchange(o.held_, false)) {}
  SubreaperHold& operator=(SubreaperHold&&) = delete;
  ~SubreaperHold();

 private:
  SubreaperHold() = default;
  bool held_ = false;
};

}  // namespace scxkit::internal
