#include "scxkit/scheduler.hpp"

#include <string.h>

#include <fmt/format.h>

#include "common/process.hpp"
#include "harness/child_process.hpp"
#include "harness/log_tail.hpp"
#include "harness/sched_ext_watch.hpp"
#include "scxkit/cgroup.hpp"

namespace scxkit {

namespace internal {

struct SchedulerState {
  SchedulerSpec spec;
  std::optional<SubreaperHold> subreaper;  // released last, once everything is reaped
  // Declared before the child: destroyed after it, so its group goes first.
  std::optional<Cgroup> run, cgroup;
  std::string containment;
  std::optional<ChildProcess> child;
  std::shared_ptr<std::atomic<pid_t>> pid = std::make_shared<std::atomic<pid_t>>(0);
  std::unique_ptr<SchedExtWatch> sysfs;
  std::unique_ptr<KernelLogTail> kernel_log;
  std::string kernel_text;  // the kernel log since start: its last kLogWindow bytes
  std::string name;
  Clock::time_point spawned_at{}, attached_at{};
  std::optional<StopReport> stopped;

  std::uint64_t log_start = 0;  // the log is appended to: this run's part starts here

  std::string log_tail() const { return tail_lines(spec.log_path, 20, log_start); }
  // This run's part of the log, as much as the bounded reader keeps.
  std::string log_text() const { return tail_lines(spec.log_path, kLogWindow, log_start); }
  // The kernel's exit line since the start, else one in the scheduler's log.
  std::optional<ScxExit> kernel_exit(const std::string& log) const {
    auto e = find_scx_exit(kernel_text);
    return e ? e : find_scx_exit(log);
  }
  // Places the scheduler in a cgroup of its own, or says why it cannot.
  void contain() {
    if (spec.cgroup_parent.empty()) {
      containment = "process group only (no cgroup asked for)";
    } else {
      auto layout = detect_cgroup_layout();
      // What a killed run left behind (its helpers outlive it there) goes first.
      if (layout) (void)remove_stale_cgroup_runs(*layout, spec.cgroup_parent);
      auto r = layout ? Cgroup::create_run(*layout, spec.cgroup_parent)
                      : Result<Cgroup>(tl::unexpected(layout.error()));
      auto c = r ? r->create_child("scheduler") : Result<Cgroup>(tl::unexpected(r.error()));
      if (c) {
        containment = fmt::format("cgroup {} ({})", c->directories().front(),
                                  c->has_kill_file() ? "cgroup.kill" : "freeze and SIGKILL loop");
        run.emplace(std::move(*r));
        cgroup.emplace(std::move(*c));
        return;
      }
      containment = fmt::format("process group only ({})", c.error().message);
    }
    containment += ": a helper that leaves the process group (setsid) survives the stop";
  }
  // The kernel prints why it disabled a scheduler before it turns `state`
  // from "disabling" to "disabled": wait for that (bounded), then read the log.
  void settle_detach() {
    const auto deadline = Clock::now() + spec.exit_settle;
    while (sysfs->read().state == "disabling" && Clock::now() < deadline) sysfs->wait({}, deadline);
    append_bounded(kernel_text, kernel_log->read_new());
  }
  // Ends the scheduler and everything it started for good, and withdraws the published pid.
  void finish(Clock::time_point deadline) {
    if (child) {
      std::vector<pid_t> helpers;
      if (cgroup) {
        if (auto killed = cgroup->kill(
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
          helpers = std::move(*killed);
        }
        // Helpers that died before the kill, orphaned: zombies reparented to us.
        for (pid_t z : cgroup->exited_unreaped()) helpers.push_back(z);
      }
      child->kill_and_reap_group(deadline);
      std::erase(helpers, child->pid());
      ChildProcess::reap_helpers(std::move(helpers), deadline);
    }
    if (cgroup) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      (void)cgroup->remove(std::max(left, std::chrono::milliseconds(100)));
      (void)run->remove(std::chrono::milliseconds(100));
    }
    pid->store(0);
  }
};

}  // namespace internal

namespace {

using internal::Clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

milliseconds since(Clock::time_point t) {
  return duration_cast<milliseconds>(Clock::now() - t);
}

// Several lines as one, for a message that must stay one line.
std::string one_line(std::string text) {
  for (std::size_t at = 0; (at = text.find('\n', at)) != std::string::npos;)
    text.replace(at, 1, " | ");
  return text;
}

bool kernel_shows_detached(const SchedExtStatus& s) {
  return !s.present || s.ops.empty() || s.state == "disabling" || s.state == "disabled";
}

}  // namespace

std::string ProcessExit::describe() const {
  if (!known) return "exited (status unknown: the kernel reaped it because SIGCHLD is ignored)";
  if (signaled) {
    const char* abbrev = sigabbrev_np(code);
    return fmt::format("was killed by SIG{}", abbrev != nullptr ? abbrev : std::to_string(code));
  }
  return fmt::format("exited with status {}", code);
}

const SchedulerProblem& problem_of(const StartError& error) {
  return std::visit([](const auto& e) -> const SchedulerProblem& { return e; }, error);
}

Scheduler::Scheduler(std::unique_ptr<internal::SchedulerState> s) : s_(std::move(s)) {}
Scheduler::Scheduler(Scheduler&&) noexcept = default;
Scheduler& Scheduler::operator=(Scheduler&&) noexcept = default;
Scheduler::~Scheduler() {
  if (s_ && !s_->stopped) s_->finish(Clock::now() + s_->spec.kill_timeout);
}

pid_t Scheduler::pid() const {
  return s_->pid->load();
}
std::shared_ptr<const std::atomic<pid_t>> Scheduler::published_pid() const {
  return s_->pid;
}
const std::string& Scheduler::name() const {
  return s_->name;
}
std::chrono::milliseconds Scheduler::attach_time() const {
  return duration_cast<milliseconds>(s_->attached_at - s_->spawned_at);
}
std::chrono::steady_clock::time_point Scheduler::attached_at() const {
  return s_->attached_at;
}
const std::string& Scheduler::containment() const {
  return s_->containment;
}

tl::expected<Scheduler, StartError> Scheduler::start(SchedulerSpec spec) {
  const auto invalid = [](std::string why) {
    InvalidSpec e;
    e.message = std::move(why);
    return tl::unexpected<StartError>(std::move(e));
  };
  if (spec.binary.empty()) return invalid("no scheduler binary given");
  if (spec.log_path.empty()) return invalid("no log path given for the scheduler's output");
  if (spec.liveness_window.count() <= 0) return invalid("the liveness window must be positive");
  if (spec.attach_timeout < spec.liveness_window) {
    return invalid(
        fmt::format("the attach timeout ({} ms) is shorter than the liveness window "
                    "({} ms); raise the attach timeout",
                    spec.attach_timeout.count(), spec.liveness_window.count()));
  }

  auto s = std::make_unique<internal::SchedulerState>();
  s->spec = std::move(spec);
  const SchedulerSpec& sp = s->spec;
  s->kernel_log = std::make_unique<internal::KernelLogTail>(sp.kernel_log);
  s->sysfs = std::make_unique<internal::SchedExtWatch>(sp.sysfs_root);
  if (const SchedExtStatus before = s->sysfs->read(); before.present && !before.ops.empty()) {
    SchedExtBusy e;
    e.seen = before;
    e.message = fmt::format(
        "sched_ext already runs scheduler '{}' (state '{}'); '{}' was not started. Stop the "
        "other scheduler first (a leftover in a fake sysfs tree counts too).",
        before.ops, before.state, sp.binary);
    return tl::unexpected<StartError>(std::move(e));
  }
  auto log = internal::open_append_log(sp.log_path);
  if (!log) {
    LogUnwritable e;
    e.sys_errno = log.error().sys_errno;
    e.message = fmt::format(
        "{}; '{}' was not started. Give a log path in an existing, writable "
        "directory (--log FILE).",
        log.error().message, sp.binary);
    return tl::unexpected<StartError>(std::move(e));
  }
  s->log_start = log->start;
  s->contain();
  auto hold = internal::SubreaperHold::acquire();
  if (!hold) {
    SpawnFailed e;
    e.sys_errno = hold.error().sys_errno;
    e.message = fmt::format("'{}' was not started: {}", sp.binary, hold.error().message);
    return tl::unexpected<StartError>(std::move(e));
  }
  s->subreaper.emplace(std::move(*hold));
  s->spawned_at = Clock::now();
  auto child = internal::ChildProcess::spawn(
      {.binary = sp.binary,
       .args = sp.args,
       .log_fd = log->fd.get(),
       .use_pidfd = sp.use_pidfd,
       .join_procs_files = s->cgroup ? s->cgroup->procs_files() : std::vector<std::string>{}});
  if (!child) {
    SpawnFailed e;
    e.sys_errno = child.error().sys_errno;
    e.message = fmt::format(
        "could not start: {}. Check that it exists and is executable "
        "(or is on PATH), and that its libraries are installed (ldd).",
        child.error().message);
    e.log_tail = s->log_tail();
    return tl::unexpected<StartError>(std::move(e));
  }
  s->child.emplace(std::move(*child));
  s->pid->store(s->child->pid());

  const auto gate_end = s->spawned_at + sp.liveness_window;
  const auto attach_end = s->spawned_at + sp.attach_timeout;
  bool sysfs_seen = false, attached = false;
  SchedExtStatus status;
  for (;;) {
    status = s->sysfs->read();
    sysfs_seen = sysfs_seen || status.present;
    // Attached once the kernel has switched every task to it: `ops` names it
    // as soon as it registers, while `state` still says "enabling".
    if (!attached && status.present && !status.ops.empty() && status.state == "enabled") {
      attached = true;
      s->attached_at = Clock::now();
      s->name = status.ops;
    }
    if (internal::fd_ready(sp.stop_fd)) {
      Interrupted e;
      s->finish(Clock::now() + sp.kill_timeout);
      e.message = fmt::format(
          "a stop was requested {} ms after '{}' started, before it was up; it "
          "was killed",
          since(s->spawned_at).count(), sp.binary);
      e.log_tail = s->log_tail();
      return tl::unexpected<StartError>(std::move(e));
    }
    if (s->child->has_exited()) {
      DiedDuringLiveness e;
      e.exit = s->child->reap();
      e.alive_for = since(s->spawned_at);
      e.had_attached = attached;
      s->finish(Clock::now() + sp.kill_timeout);  // helpers it left behind
      e.verifier = find_verifier_lines(s->log_text());
      const std::string died = fmt::format(
          "'{}' {} {} ms after it started, {}.", sp.binary, e.exit.describe(), e.alive_for.count(),
          attached ? fmt::format("after attaching but within the {} ms liveness window",
                                 sp.liveness_window.count())
                   : "before it attached");
      e.message =
          e.verifier.empty()
              ? fmt::format(
                    "{} Likely causes: its BPF program failed to load or the verifier rejected "
                    "it, missing privileges (run as root), a kernel feature it needs is missing, "
                    "or bad arguments. Look for 'libbpf:' and verifier lines in {}.",
                    died, sp.log_path)
              : fmt::format(
                    "{} The verifier refused its BPF program: {}. The whole verifier log is in {}.",
                    died, one_line(e.verifier), sp.log_path);
      e.log_tail = s->log_tail();
      return tl::unexpected<StartError>(std::move(e));
    }
    const auto now = Clock::now();
    if (attached && now >= gate_end) break;
    if (!attached && !sysfs_seen && now >= gate_end) {
      SysfsAbsent e;
      s->finish(now + sp.kill_timeout);
      e.message = fmt::format(
          "{}/state was never readable: this kernel has no sched_ext (built without "
          "CONFIG_SCHED_CLASS_EXT), or {} is not the sched_ext sysfs directory. '{}' was killed. "
          "Run on a kernel with sched_ext, or point --sysfs-root at the right directory.",
          sp.sysfs_root, sp.sysfs_root, sp.binary);
      e.log_tail = s->log_tail();
      return tl::unexpected<StartError>(std::move(e));
    }
    if (!attached && now >= attach_end) {
      AttachTimeout e;
      e.last_seen = status;
      s->finish(now + sp.kill_timeout);
      e.message = fmt::format(
          "'{}' stayed alive for {} ms but never attached: {}/root/ops {} (state '{}'). It was "
          "killed. Likely causes: slow initialization (raise the attach timeout), an attach "
          "that failed without the scheduler exiting, or another scheduler holding sched_ext. "
          "Look at {}.",
          sp.binary, sp.attach_timeout.count(), sp.sysfs_root,
          status.ops.empty()
              ? std::string("stayed empty")
              : fmt::format("named '{}' but the kernel never finished enabling it", status.ops),
          status.state, sp.log_path);
      e.log_tail = s->log_tail();
      return tl::unexpected<StartError>(std::move(e));
    }
    s->sysfs->wait({s->child->pidfd(), sp.stop_fd},
                   attached ? gate_end : (sysfs_seen ? attach_end : gate_end));
  }
  internal::append_bounded(s->kernel_text, s->kernel_log->read_new());
  return Scheduler(std::move(s));
}

std::optional<DetachedWhileRunning> Scheduler::watch(std::chrono::milliseconds duration) {
  if (s_->stopped || s_->pid->load() == 0) return std::nullopt;
  const auto deadline = Clock::now() + duration;
  for (;;) {
    const SchedExtStatus status = s_->sysfs->read();
    internal::append_bounded(s_->kernel_text, s_->kernel_log->read_new());
    bool died = s_->child->has_exited();
    if (died || kernel_shows_detached(status)) {
      DetachedWhileRunning e;
      e.state = status.state;
      s_->settle_detach();
      // A dying scheduler's link closes before its exit shows: look again.
      died = died || s_->child->has_exited();
      e.process_died = died;
      if (died) {
        e.exit = s_->child->reap();
        s_->finish(Clock::now() + s_->spec.kill_timeout);
      }
      const std::string log = s_->log_text();
      e.log_tail = s_->log_tail();
      e.kernel_exit = s_->kernel_exit(log);
      e.loader_exit = find_loader_exit(log);
      const std::string why =
          e.kernel_exit
              ? fmt::format(
                    " The kernel says: {} ({}){}.", e.kernel_exit->reason,
                    to_string(e.kernel_exit->kind),
                    e.kernel_exit->message.empty() ? std::string() : ": " + e.kernel_exit->message)
              : std::string();
      e.message = died ? fmt::format(
                             "scheduler '{}' {} while attached (sched_ext state '{}').{} Look at "
                             "the end of {} for its last words.",
                             s_->name, e.exit.describe(), status.state, why, s_->spec.log_path)
                       : fmt::format(
                             "the kernel detached scheduler '{}' while its process kept running "
                             "(state '{}', ops '{}').{} A stall (a runnable task not run for the "
                             "watchdog timeout) or a scx_bpf_error() are the usual causes; see "
                             "the kernel log and {}.",
                             s_->name, status.state, status.ops, why, s_->spec.log_path);
      return e;
    }
    if (Clock::now() >= deadline || internal::fd_ready(s_->spec.stop_fd)) return std::nullopt;
    s_->sysfs->wait({s_->child->pidfd(), s_->spec.stop_fd}, deadline);
  }
}

tl::expected<StopReport, WedgedOnStop> Scheduler::stop() {
  if (s_->stopped) return *s_->stopped;
  const SchedulerSpec& sp = s_->spec;
  const auto t0 = Clock::now();
  StopReport report;
  if (s_->pid->load() != 0 && !s_->child->has_exited()) {
    s_->child->signal_group(SIGTERM);
    if (!s_->child->wait_exit_until(t0 + sp.stop_grace)) {
      report.needed_kill = true;
      s_->child->signal_group(sp.kill_signal);
      if (!s_->child->wait_exit_until(Clock::now() + sp.kill_timeout)) {
        WedgedOnStop e;
        e.pid = s_->child->pid();
        e.message = fmt::format(
            "'{}' (pid {}) did not exit within {} ms of SIGTERM nor {} ms of signal {}; it is "
            "probably stuck in the kernel (process state '{}'). Look at /proc/{}/stack and the "
            "kernel log. The harness does not wait for it any longer.",
            sp.binary, e.pid, sp.stop_grace.count(), sp.kill_timeout.count(), sp.kill_signal,
            internal::process_state(e.pid), e.pid);
        e.log_tail = s_->log_tail();
        return tl::unexpected(std::move(e));
      }
    }
  }
  report.exit = s_->child->reap();
  s_->finish(Clock::now() + sp.kill_timeout);  // helpers that ignored SIGTERM
  // The kernel unregisters the scheduler when its BPF link closes: give it
  // what is left of the grace period (at least 100 ms) to show it.
  const auto detach_end = std::max(t0 + sp.stop_grace, Clock::now() + milliseconds(100));
  for (;;) {
    report.kernel_detached = kernel_shows_detached(s_->sysfs->read());
    if (report.kernel_detached || Clock::now() >= detach_end) break;
    s_->sysfs->wait({}, detach_end);
  }
  report.took = since(t0);
  internal::append_bounded(s_->kernel_text, s_->kernel_log->read_new());
  const std::string log = s_->log_text();
  report.kernel_exit = s_->kernel_exit(log);
  report.loader_exit = find_loader_exit(log);
  s_->stopped = report;
  return report;
}

}  // namespace scxkit
