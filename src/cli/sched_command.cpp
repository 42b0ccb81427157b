#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <chrono>
#include <cmath>
#include <variant>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "scxkit/scheduler.hpp"

namespace scxkit::cli {

namespace {

// Exit codes of `scxkit sched start`, one per outcome (README, docs/HARNESS.md).
enum SchedExit : int {
  kAttachedAndStopped = 0,
  kUsage = 2,
  kSpawnFailed = 3,
  kDiedDuringLiveness = 4,
  kAttachTimeout = 5,
  kSysfsAbsent = 6,
  kWedgedOnStop = 7,
  kDetachedWhileRunning = 8,
  kSchedExtBusy = 9,
  kInterrupted = 10,
};

// Self-pipe: the handler makes it readable, and every wait of the harness polls it.
volatile sig_atomic_t g_stop_requested = 0;
int g_stop_pipe[2] = {-1, -1};
void on_stop_signal(int) {
  g_stop_requested = 1;
  const int saved = errno;
  if (write(g_stop_pipe[1], "s", 1) < 0) {
  }  // full already: it is readable, which is all that counts
  errno = saved;
}

constexpr double kMaxHoldSeconds = 30 * 24 * 3600;

struct StartOptions {
  SchedulerSpec spec;
  double hold_seconds = -1;  // < 0: until Ctrl-C
  int liveness_ms = 1000, attach_timeout_ms = 10000, grace_ms = 5000;
};

void print_problem(const SchedulerProblem& p) {
  if (!p.log_tail.empty()) {
    fmt::print(stderr, "last lines of the scheduler's log:\n");
    std::size_t start = 0;
    while (start < p.log_tail.size()) {
      const std::size_t end = p.log_tail.find('\n', start);
      fmt::print(stderr, "  | {}\n", p.log_tail.substr(start, end - start));
      start = end == std::string::npos ? p.log_tail.size() : end + 1;
    }
  }
  print_error(p.message);
}

int start_error_code(const StartError& e) {
  struct Code {
    int operator()(const InvalidSpec&) const { return kUsage; }
    int operator()(const SchedExtBusy&) const { return kSchedExtBusy; }
    int operator()(const LogUnwritable&) const { return kUsage; }
    int operator()(const SpawnFailed&) const { return kSpawnFailed; }
    int operator()(const DiedDuringLiveness&) const { return kDiedDuringLiveness; }
    int operator()(const AttachTimeout&) const { return kAttachTimeout; }
    int operator()(const SysfsAbsent&) const { return kSysfsAbsent; }
    int operator()(const Interrupted&) const { return kInterrupted; }
  };
  return std::visit(Code{}, e);
}

int run_start(StartOptions& o) {
  o.spec.liveness_window = std::chrono::milliseconds(o.liveness_ms);
  o.spec.attach_timeout = std::chrono::milliseconds(o.attach_timeout_ms);
  o.spec.stop_grace = std::chrono::milliseconds(o.grace_ms);
  if (pipe2(g_stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    print_error(fmt::format("cannot create the stop pipe: {}", strerror(errno)));
    return 1;
  }
  o.spec.stop_fd = g_stop_pipe[0];
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  // A hangup (the terminal closed) stops it cleanly too, instead of killing us
  // and leaving the scheduler to the parent-death signal.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  fmt::print("starting {} (log: {})\n", o.spec.binary, o.spec.log_path);
  auto s = Scheduler::start(o.spec);
  if (!s) {
    print_problem(problem_of(s.error()));
    return start_error_code(s.error());
  }
  fmt::print("attached: '{}' (pid {}) {} ms after start; {}\n", s->name(), s->pid(),
             s->attach_time().count(),
             o.hold_seconds < 0 ? std::string("holding until Ctrl-C")
                                : fmt::format("holding for {} s", o.hold_seconds));
  fmt::print("contained in: {}\n", s->containment());
  std::fflush(stdout);  // progress for whoever reads a redirected stdout now
  int code = kAttachedAndStopped;
  const auto hold_end = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(std::max(o.hold_seconds, 0.0)));
  while (g_stop_requested == 0 &&
         (o.hold_seconds < 0 || std::chrono::steady_clock::now() < hold_end)) {
    if (auto trouble = s->watch(std::chrono::milliseconds(100))) {
      print_problem(*trouble);
      code = kDetachedWhileRunning;
      break;
    }
  }
  auto stopped = s->stop();
  if (!stopped) {
    print_problem(stopped.error());
    return kWedgedOnStop;
  }
  fmt::print("stopped in {} ms: '{}' {}{}; the kernel {}\n", stopped->took.count(), s->name(),
             stopped->exit.describe(),
             stopped->needed_kill ? " (SIGTERM was not enough: it was killed)" : " on SIGTERM",
             stopped->kernel_detached ? "detached it" : "still shows it attached");
  for (const auto& [exit, source] : {std::pair{stopped->kernel_exit, "the kernel log"},
                                     std::pair{stopped->loader_exit, "the scheduler's log"}}) {
    if (!exit) continue;
    fmt::print("exit: {} ({}){} (from {})\n", to_string(exit->kind), exit->reason,
               exit->message.empty() ? std::string() : ": " + exit->message, source);
  }
  return code;
}

}  // namespace

void add_sched_command(CLI::App& app, int& exit_code) {
  auto* sched = app.add_subcommand("sched", "Run sched_ext schedulers under the harness");
  sched->require_subcommand(1);
  static StartOptions o;
  o.spec.log_path = "scxkit-sched.log";
  auto* start = sched->add_subcommand(
      "start",
      "Start a scheduler, prove it attached, hold it, stop it cleanly.\n"
      "Exit codes: 0 attached and stopped, 2 usage, 3 spawn failed, 4 died during the liveness "
      "window, 5 alive but never attached (timeout), 6 sched_ext sysfs absent, 7 wedged on "
      "stop, 8 detached or died while running, 9 another scheduler already attached, 10 "
      "stopped by SIGINT/SIGTERM/SIGHUP before it was up.");
  start->add_option("binary", o.spec.binary, "The scheduler binary (path or name in PATH)")
      ->required();
  start->add_option("args", o.spec.args, "Arguments for the scheduler, after --");
  start
      ->add_option("--hold", o.hold_seconds,
                   "Seconds to hold it attached, at most 30 days (default: until Ctrl-C)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            // CLI11's Range lets nan through (every comparison with nan is false).
            double v = 0;
            if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < 0 ||
                v > kMaxHoldSeconds) {
              return fmt::format(
                  "a number of seconds from 0 to {} (30 days) is needed, not '{}'; leave it "
                  "out to hold until Ctrl-C",
                  kMaxHoldSeconds, text);
            }
            return {};
          },
          "SECONDS"));
  start->add_option("--sysfs-root", o.spec.sysfs_root, "The sched_ext sysfs directory")
      ->capture_default_str();
  start->add_option("--log", o.spec.log_path, "Where the scheduler's stdout and stderr go")
      ->capture_default_str();
  start->add_option("--liveness-ms", o.liveness_ms, "How long it must stay alive")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  start->add_option("--attach-timeout-ms", o.attach_timeout_ms, "How long to wait for attach")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  start->add_option("--grace-ms", o.grace_ms, "SIGTERM grace period before SIGKILL")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  start->callback([&exit_code] { exit_code = run_start(o); });
}

}  // namespace scxkit::cli
