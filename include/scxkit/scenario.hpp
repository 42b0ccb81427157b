// Scenarios as data: cgroups (name, cpuset, cpu weight), workers in them with a
// work type, timed steps that change things while the workers run, and the
// thresholds of the checks. A built-in set covers the usual trouble; more are
// loaded from JSON files (docs/RUN.md has the format), validated with errors
// that name the bad field.
//
//   auto all = builtin_scenarios(*CpuSet::allowed());
//   auto mine = load_scenarios("my.json");   // one scenario or {"scenarios": [...]}
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "scxkit/cpu_set.hpp"
#include "scxkit/error.hpp"

namespace scxkit {

using Millis = std::chrono::milliseconds;

// What a worker does in its loop; every loop counts its progress in "ops".
enum class WorkType {
  spin,            // CPU-bound arithmetic
  yield,           // a little arithmetic, then sched_yield()
  bursty,          // a burst of CPU, then a timed sleep (wake latency measured)
  pipe_pingpong,   // two threads bounce a byte over two pipes (wake latency measured)
  futex_pingpong,  // two threads bounce a futex word (wake latency measured)
  io_sleep,        // short CPU, then a sleep as if waiting for I/O (wake latency measured)
  fork_churn,      // fork a child that exits at once, reap it
  mutex,           // threads contend for one mutex
  page_fault,      // map, touch and unmap pages
};
std::string_view to_string(WorkType t);
Result<WorkType> parse_work_type(std::string_view name);
// Types whose progress needs the CPU all the time: starvation is judged by CPU share.
bool cpu_hungry(WorkType t);

struct CgroupSpec {
  std::string name;
  std::optional<CpuSet> cpus;  // cpuset; none: inherit
  std::optional<int>
      weight;  // cgroup v2 cpu.weight scale, 1..10000 (v1: cpu.shares = weight*1024/100)
};

struct WorkerSpec {
  std::string name;  // instances are name.0 ... name.(count-1)
  std::string cgroup;
  WorkType work = WorkType::spin;
  int count = 1;
  int nice = 0;
  std::optional<CpuSet> affinity;
  int rt_priority = 0;         // > 0: SCHED_FIFO at this priority (bounded by RLIMIT_RTTIME)
  int threads = 0;             // mutex: contending threads (0: 4)
  Millis sleep{1};             // bursty, io_sleep: sleep per op
  Millis burst{1};             // bursty: CPU per op
  Millis start{0};             // when it starts, from the scenario's start
  std::optional<Millis> stop;  // when it is stopped (default: the end)
};

// Timed steps; each names the cgroups or worker specs it acts on.
struct SetCpus {
  std::string cgroup;
  CpuSet cpus;
};
struct SwapCpus {
  std::string a, b;
};
struct AddCgroup {
  CgroupSpec cgroup;
};
struct RemoveCgroup {
  std::string cgroup;  // its workers move to the scenario's root cgroup first
};
struct MoveWorkers {
  std::string worker, to_cgroup;
};
struct SetAffinity {
  std::string worker;
  std::optional<CpuSet> cpus;  // none: every CPU again
};
struct SetNice {
  std::string worker;
  int nice = 0;
};
struct SpawnWorkers {
  WorkerSpec worker;
};
struct StopWorkers {
  std::string worker;
};
using StepAction = std::variant<SetCpus, SwapCpus, AddCgroup, RemoveCgroup, MoveWorkers,
                                SetAffinity, SetNice, SpawnWorkers, StopWorkers>;
struct Step {
  Millis at{0};
  StepAction action;
};
std::string describe(const StepAction& a);

// Check thresholds (docs/RUN.md defines each check). A check that is off is
// reported as skipped.
struct Thresholds {
  bool starvation = true;
  // CPU-hungry workers: the share of its fair share (WorkerResult::fair_share)
  // it got while it was runnable; and an absolute floor, a share of one CPU
  // over its run (0: none).
  double min_fair_share = 0.3;
  double min_cpu_share = 0;
  bool fairness = true;
  double max_spread = 0.5;  // peers in a cgroup: (max - min) / max of CPU time
  bool stuck = true;
  Millis max_gap{1000};  // longest wait between progress checkpoints
  bool isolation = true;
  bool wake_latency = true;
  double max_wake_p99_us = 20000;
  bool kernel = true;
  std::vector<std::string> kernel_patterns;  // extra patterns, besides the built-in ones
};

struct Scenario {
  std::string name;
  std::string description;
  Millis duration{3000};
  std::vector<CgroupSpec> cgroups;  // "" (the run's root cgroup) is implicit
  std::vector<WorkerSpec> workers;
  std::vector<Step> steps;
  Thresholds thresholds;
};

// Cross-field rules: names unique and known, times inside the duration, CPUs
// present on `host`. The message names the field: "workers[2].cgroup: ...".
Result<void> validate(const Scenario& s, const CpuSet& host);

// The scenario with its duration and every start, stop and step time
// multiplied by `factor` (work parameters such as sleep_ms stay).
Scenario scale_times(Scenario s, double factor);

// The built-in set, laid out over the CPUs of `host` (a set needing two CPUs is
// left out on a one-CPU host).
std::vector<Scenario> builtin_scenarios(const CpuSet& host);

// JSON: one scenario object, or {"scenarios": [...]}. Unknown fields are errors.
Result<std::vector<Scenario>> parse_scenarios(std::string_view json_text);
Result<std::vector<Scenario>> load_scenarios(const std::string& path);

}  // namespace scxkit
