// scxkit::run_scenarios — the scenario runner. Each scenario gets a fresh run
// cgroup with its cgroups under it, its workers forked into them behind a start
// barrier, its steps applied on time, the kernel log watched, samples taken,
// and everything killed, reaped and removed at the end — also when a step
// fails or the caller asks to stop (Ctrl-C). Results feed the checks
// (scxkit/checks.hpp) and the reports (scxkit/report.hpp).
//
//   RunOptions opt;
//   auto report = run_scenarios(builtin_scenarios(*CpuSet::allowed()), opt);
//   if (!report) ...;              // could not run at all (no cgroups, ...)
//   report->passed;                // every check of every scenario passed
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scxkit/cgroup.hpp"
#include "scxkit/cpu_set.hpp"
#include "scxkit/error.hpp"
#include "scxkit/scenario.hpp"
#include "scxkit/scheduler.hpp"

namespace scxkit {

// The CPUs one worker was allowed and ran on while one placement held.
struct PlacementEpoch {
  double from_s = 0;  // since the scenario started
  CpuSet allowed;     // its cgroup's cpuset and its affinity, as the runner set them
  CpuSet ran_on;      // what its threads' checkpoints saw
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;              // bucket upper bounds (at most 25% over)
  std::vector<std::pair<double, std::uint64_t>> buckets;  // (upper bound in us, count), non-empty
};

struct WorkerResult {
  std::string name;  // "<spec>.<i>"
  std::string spec;
  std::string cgroup;  // where it was at the end ("" is the run's root)
  WorkType work = WorkType::spin;
  int nice = 0;  // at the end
  int rt_priority = 0;
  std::string affinity;  // at the end; "" for every CPU
  double start_s = 0, active_s = 0;
  std::uint64_t ops = 0;
  std::uint64_t cpu_ns = 0;        // /proc/<pid>/task/*/schedstat
  std::uint64_t wait_ns = 0;       // run-queue wait, same source
  std::uint64_t migrations = 0;    // se.nr_migrations
  std::uint64_t cpu_switches = 0;  // checkpoints that found the thread on another CPU
  double max_gap_ms = 0, max_gap_at_s = 0;
  LatencySummary wake;
  std::vector<PlacementEpoch> placements;
  std::vector<double> cpu_share_timeline;  // share of one CPU per sample interval
  std::string failure;                     // the worker could not run its loop
  // What a fair scheduler owed it, given how busy its CPUs were (estimate_fair_shares):
  // the share of one CPU a task of its nice value gets among the tasks that
  // were runnable on its CPUs, and how many tasks per CPU it competed with
  // (itself included). 0 when unknown.
  double fair_share = 0, contention = 0;

  double cpu_share() const;  // cpu_ns over active time
  double service() const;    // cpu_ns over the time it was runnable (cpu_ns + wait_ns)
  double ops_per_s() const;
  CpuSet ran_on() const;
};

struct StepRecord {
  double at_s = 0;
  std::string what;
  std::string error;  // "" when applied
};

enum class CheckOutcome { pass, fail, skipped };
struct CheckResult {
  std::string name;  // starvation, fairness, stuck, isolation, wake_latency, kernel
  CheckOutcome outcome = CheckOutcome::skipped;
  std::string summary;                // one line
  std::vector<std::string> findings;  // one per offending worker, group or kernel line
  std::optional<double> at_s;         // when the first failure happened, if known
};

struct KernelLine {
  double at_s = 0;
  std::string kind;  // "RCU stall", "soft lockup", ...
  std::string text;
};

// How busy the machine was while a scenario ran: /proc/stat's procs_running
// sampled with the workers, less the runner itself and the scenario's own
// runnable workers (their schedstat time on and waiting for a CPU).
struct MachineLoad {
  unsigned cpus = 0;             // CPUs the run may use
  std::size_t samples = 0;       // 0: not measured
  double runnable = 0;           // average runnable tasks on the machine, the runner excluded
  double outside = 0;            // of those, tasks that are not the scenario's workers
  std::vector<double> cpu_busy;  // CPU-seconds each CPU was busy (any task), by CPU number
  double outside_per_cpu() const { return cpus > 0 ? outside / cpus : 0; }
  // Busy: more runnable tasks outside the scenario than CPUs.
  bool busy() const { return samples > 0 && outside_per_cpu() >= 1.0; }
};

struct ScenarioResult {
  Scenario scenario;
  double elapsed_s = 0;
  double sample_interval_s = 0;
  std::vector<WorkerResult> workers;
  std::vector<StepRecord> steps;
  std::vector<KernelLine> kernel_lines;
  MachineLoad machine;
  std::vector<CheckResult> checks;
  std::string error;  // the scenario could not be run; checks are then empty
  bool interrupted = false;
  bool passed() const;
};

struct RunReport {
  static constexpr int kSchemaVersion = 1;
  std::string started_at;  // UTC, ISO 8601
  std::string host, kernel;
  std::string scheduler;  // "default" or the sched_ext scheduler's name
  std::string cgroup_layout;
  std::vector<ScenarioResult> scenarios;
  // Scenarios left out because the scheduler was detached (or died) in an
  // earlier one: they would have run on the kernel's default scheduler.
  std::vector<std::string> not_run;
  bool interrupted = false;
  bool passed() const;
};

// Hears the run as it goes: the terminal's live progress, tests that need to
// reach into a running scenario.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // The scenario's cgroups exist and its first workers are released.
  // `cgroup_dirs` maps each scenario cgroup name to its directories.
  virtual void started(const Scenario&, const std::map<std::string, std::vector<std::string>>&
                       /*cgroup_dirs*/) {}
  virtual void progress(const Scenario&, double /*elapsed_s*/, std::uint64_t /*ops*/,
                        std::size_t /*live_workers*/) {}
  virtual void step(const Scenario&, const StepRecord&) {}
  virtual void finished(const ScenarioResult&) {}
};

struct RunOptions {
  std::optional<double> duration_scale;  // multiplies every scenario's times
  std::chrono::milliseconds sample_interval{100};
  std::string kernel_log = "/dev/kmsg";  // "" to skip the kernel-log watch
  std::optional<CgroupLayout> layout;    // default: detected from /proc/self/mountinfo
  std::string cgroup_parent = "scxkit";
  std::optional<SchedulerSpec> scheduler;   // none: the kernel's default scheduler
  const std::atomic<bool>* stop = nullptr;  // set (e.g. from SIGINT) to end the run early
  RunObserver* observer = nullptr;
};

// Runs the scenarios one after another. Errors: nothing could run (no cgroup
// hierarchy, invalid scenario, the scheduler did not start). A scenario that
// fails halfway is recorded with its error and the run goes on.
struct RunFailure {
  std::string message;
  std::optional<StartError> scheduler;  // the scheduler's start outcome, when that failed
};
tl::expected<RunReport, RunFailure> run_scenarios(const std::vector<Scenario>& scenarios,
                                                  const RunOptions& options);

}  // namespace scxkit
