// scxkit::Scheduler — start a sched_ext scheduler binary, prove it attached,
// watch it, and stop it, never leaving a process behind.
//
//   auto s = Scheduler::start({.binary = "scx_simple", .log_path = "simple.log"});
//   if (!s) { fmt::print("{}\n", problem_of(s.error()).message); return; }
//   if (auto trouble = s->watch(10s)) { ... }   // died or detached meanwhile
//   auto stopped = s->stop();
//
// Containment: the scheduler runs in a cgroup of its own
// (<cgroup_parent>/run-.../scheduler in the cgroup2 tree, or the v1 freezer),
// joined before exec, so it and every descendant — helpers that setsid() too —
// are killed as a whole on stop. Where no cgroup can be made (not root), it
// falls back to its process group and containment() says what that leaves open.
// It dies with the harness (parent-death SIGKILL: the kernel ties it to the
// *thread* that called start(), so call it from a thread that lives on); what
// a killed harness left in its cgroup is cleared by the next start().
//
// Start: the process (its own process group, stdout+stderr to the log) must
// stay alive for the liveness window, watched through a pidfd; meanwhile
// <sysfs_root>/root/ops is watched (inotify, POLLPRI, capped re-checks) until
// it names the scheduler. Every outcome has its own error type, each with a
// message naming likely causes and the next step, and the log's last lines.
// A scheduler that is alive but not attached is SIGKILLed and reaped before
// start() returns. Every wait is bounded.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <tl/expected.hpp>

#include "scxkit/sched_ext.hpp"

namespace scxkit {

struct ProcessExit {
  bool known = false;     // false: the kernel reaped it (the harness ignores SIGCHLD)
  bool signaled = false;  // killed by signal `code`
  int code = 0;
  std::string describe() const;
};

struct SchedulerSpec {
  std::string binary;  // a path, or a name searched in PATH
  std::vector<std::string> args;
  std::string log_path;  // stdout and stderr are appended here (a file or a device)
  std::string sysfs_root = "/sys/kernel/sched_ext";
  std::string kernel_log = "/dev/kmsg";  // read for exit reasons; "" to skip
  std::chrono::milliseconds liveness_window{1000};
  std::chrono::milliseconds attach_timeout{10000};  // from spawn; at least the liveness window
  std::chrono::milliseconds stop_grace{5000};       // SIGTERM, then the kill signal
  std::chrono::milliseconds kill_timeout{2000};     // after the kill signal, before "wedged"
  // After a detach, how long watch() waits for `state` to leave "disabling":
  // the kernel prints why it disabled the scheduler just before that.
  std::chrono::milliseconds exit_settle{2000};
  // Its cgroup goes under this path in each hierarchy; "" = process group only.
  std::string cgroup_parent = "scxkit";
  bool use_pidfd = true;      // false: watch /proc/<pid>, as on kernels without pidfd_open
  int kill_signal = SIGKILL;  // tests put a harmless signal here to play a wedged process
  // Readable = stop now: a signalfd, or a self-pipe a signal handler writes
  // to. Every wait of start() and watch() includes it: start() then kills the
  // scheduler and returns Interrupted; watch() returns at once. -1: none.
  int stop_fd = -1;
};

// What every problem carries.
struct SchedulerProblem {
  std::string message;   // what happened, likely causes, what to do next
  std::string log_tail;  // the last lines of the scheduler's log
};
struct InvalidSpec : SchedulerProblem {};
// Another scheduler held sched_ext before this one was started; nothing was spawned.
struct SchedExtBusy : SchedulerProblem {
  SchedExtStatus seen;
};
// The log could not be opened for appending (a missing directory, no
// permission, a FIFO or directory in its place); nothing was spawned.
struct LogUnwritable : SchedulerProblem {
  int sys_errno = 0;  // 0: it exists but is not a file
};
struct SpawnFailed : SchedulerProblem {
  int sys_errno = 0;
};
struct DiedDuringLiveness : SchedulerProblem {
  ProcessExit exit;
  std::chrono::milliseconds alive_for{};
  bool had_attached = false;
  std::string verifier;  // the verifier's last lines in the log, if it refused a program
};
struct AttachTimeout : SchedulerProblem {
  SchedExtStatus last_seen;  // sysfs was readable; ops stayed empty or state never "enabled"
};
struct SysfsAbsent : SchedulerProblem {};
// stop_fd became readable before the scheduler was up; it was killed.
struct Interrupted : SchedulerProblem {};
struct WedgedOnStop : SchedulerProblem {
  pid_t pid = 0;
};
struct DetachedWhileRunning : SchedulerProblem {
  bool process_died = false;  // else the kernel detached a live process
  ProcessExit exit;
  std::string state;                   // sched_ext state when noticed
  std::optional<ScxExit> kernel_exit;  // kind, reason, message: the kernel log (else the log)
  std::optional<ScxExit> loader_exit;  // the exit record the scheduler printed, if it did yet
};

using StartError = std::variant<InvalidSpec, SchedExtBusy, LogUnwritable, SpawnFailed,
                                DiedDuringLiveness, AttachTimeout, SysfsAbsent, Interrupted>;
const SchedulerProblem& problem_of(const StartError& error);

struct StopReport {
  ProcessExit exit;
  bool needed_kill = false;     // did not exit within the grace period
  bool kernel_detached = true;  // ops empty / state disabled (or no sysfs) at the end
  std::chrono::milliseconds took{};
  std::optional<ScxExit> kernel_exit;  // the kernel's last exit line since the start
  std::optional<ScxExit> loader_exit;  // the exit record the scheduler printed (find_loader_exit)
};

namespace internal {
struct SchedulerState;
}

class Scheduler {
 public:
  static tl::expected<Scheduler, StartError> start(SchedulerSpec spec);

  Scheduler(Scheduler&&) noexcept;
  Scheduler& operator=(Scheduler&&) noexcept;
  ~Scheduler();  // a scheduler still running is killed and reaped

  // The scheduler's pid, 0 once it is gone. The shared cell lets any thread of
  // the harness read it without touching the environment.
  pid_t pid() const;
  std::shared_ptr<const std::atomic<pid_t>> published_pid() const;
  const std::string& name() const;                // what root/ops said
  std::chrono::milliseconds attach_time() const;  // spawn to attach seen
  std::chrono::steady_clock::time_point attached_at() const;
  // How it is contained: "cgroup <dir> (...)", or "process group only: <why>;
  // <what escapes>".
  const std::string& containment() const;

  // Waits up to `duration`; returns at once (within 100 ms) if the process
  // dies or the kernel detaches the scheduler, or (with nothing) when stop_fd
  // becomes readable.
  std::optional<DetachedWhileRunning> watch(std::chrono::milliseconds duration);
  // SIGTERM to the process group, then the kill signal after the grace
  // period; then every helper left — the whole cgroup — is killed and
  // reaped. Calling it again returns the same report.
  tl::expected<StopReport, WedgedOnStop> stop();

 private:
  explicit Scheduler(std::unique_ptr<internal::SchedulerState> s);
  std::unique_ptr<internal::SchedulerState> s_;
};

}  // namespace scxkit
