// The checks a scenario's results must pass (definitions and thresholds in
// docs/RUN.md), and the kernel-log watch that feeds the "kernel" check.
//
//   starvation    a worker made no progress, or a CPU-hungry one got less than
//                 min_fair_share of its fair share while runnable (or less than
//                 min_cpu_share of one CPU over its run)
//   fairness      CPU-hungry peers (same cgroup, work type, nice, RT priority,
//                 affinity) differ by more than max_spread: (max - min) / max
//                 of CPU share
//   stuck         the longest wait between a worker's progress checkpoints
//                 exceeded max_gap
//   isolation     a worker ran on a CPU outside its cpuset and affinity
//   wake_latency  a worker's p99 wake-up latency exceeded max_wake_p99_us
//                 times its contention (runnable tasks per CPU, at least 1)
//   kernel        the kernel log showed RCU stalls, lockups, hung tasks or
//                 sched_ext errors while the scenario ran
#pragma once

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "scxkit/error.hpp"
#include "scxkit/run.hpp"
#include "scxkit/scenario.hpp"

namespace scxkit {

std::vector<CheckResult> evaluate_checks(const Scenario& scenario,
                                         const std::vector<WorkerResult>& workers,
                                         const std::vector<KernelLine>& kernel_lines,
                                         bool kernel_log_watched = true);

// Watches a kernel log (/dev/kmsg, or a file in its format or plain lines) from
// the moment it is opened, for lines of trouble: the built-in kinds plus the
// scenario's extra patterns (ECMAScript regular expressions, kind "pattern").
class KernelLogWatch {
 public:
  static Result<KernelLogWatch> open(const std::string& path,
                                     const std::vector<std::string>& extra_patterns = {});
  KernelLogWatch(KernelLogWatch&&) noexcept;
  KernelLogWatch& operator=(KernelLogWatch&&) noexcept;
  ~KernelLogWatch();

  // Reads what arrived since the last call, never blocking; returns the
  // matching lines, stamped with `at_s`.
  std::vector<KernelLine> poll(double at_s);
  int fd() const;  // readable when a record arrived

 private:
  struct State;
  explicit KernelLogWatch(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// Sets each worker's fair_share and contention: the share of one CPU a task of
// its nice value (real-time ones count as nice 0) gets among the tasks
// runnable on the CPUs it may use, with the machine's other runnable tasks
// (`machine.outside`, counted as nice 0) spread evenly over its CPUs and each
// worker's own runnable time spread over its allowed CPUs, averaged over the
// scenario's `duration_s`. Left at 0 when the machine load was not measured.
void estimate_fair_shares(std::vector<WorkerResult>& workers, const MachineLoad& machine,
                          double duration_s);

// The kind of trouble a kernel log message shows, "" for none.
std::string kernel_trouble_kind(const std::string& message);

}  // namespace scxkit
