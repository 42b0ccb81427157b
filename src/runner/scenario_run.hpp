// One scenario, from its cgroups to its results. Internal to the runner.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "scxkit/cgroup.hpp"
#include "scxkit/run.hpp"
#include "scxkit/scheduler.hpp"

namespace scxkit::internal {

struct RunContext {
  const CgroupLayout* layout = nullptr;
  std::string cgroup_parent;
  CpuSet host;
  std::chrono::milliseconds sample_interval{100};
  std::string kernel_log;
  const std::atomic<bool>* stop = nullptr;
  RunObserver* observer = nullptr;
  Scheduler* scheduler = nullptr;  // watched while the scenario runs, when there is one
};

ScenarioResult run_one_scenario(const Scenario& scenario, const RunContext& ctx);

}  // namespace scxkit::internal
