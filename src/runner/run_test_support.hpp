// Helpers for tests that run real scenarios: a private cgroup parent per test
// process, checks that nothing is left behind. Test-only.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <fmt/format.h>

#include "scxkit/run.hpp"

namespace scxkit::testing {

inline std::string test_cgroup_parent() {
  return fmt::format("scxkit-test-{}", getpid());
}

// Creating cgroups needs root; a test without it is skipped with the reason.
inline std::optional<std::string> cannot_run_here() {
  if (geteuid() != 0) return "creating cgroups needs root";
  auto layout = detect_cgroup_layout();
  if (!layout || layout->mounts.empty()) return "no cgroup hierarchy is mounted";
  auto host = CpuSet::allowed();
  if (!host || host->count() < 2) return "these scenarios pin work to two CPUs";
  return std::nullopt;
}

inline RunOptions test_options() {
  RunOptions o;
  o.cgroup_parent = test_cgroup_parent();
  o.kernel_log = "";  // the kernel-log tests turn it on themselves
  return o;
}

inline WorkerSpec worker(std::string name, std::string cgroup, WorkType work,
                         std::optional<CpuSet> affinity = {}, int count = 1) {
  WorkerSpec w;
  w.name = std::move(name);
  w.cgroup = std::move(cgroup);
  w.work = work;
  w.affinity = affinity;
  w.count = count;
  return w;
}

// No directory named after the test parent is left in any hierarchy.
inline void expect_no_leftover_cgroups(const std::string& parent) {
  auto layout = detect_cgroup_layout();
  ASSERT_TRUE(layout);
  for (const auto& m : layout->mounts) {
    struct stat st {};
    EXPECT_NE(stat((m.mount_point + "/" + parent).c_str(), &st), 0)
        << m.mount_point << "/" << parent << " was left behind";
  }
}

inline const CheckResult& check(const ScenarioResult& r, const std::string& name) {
  for (const auto& c : r.checks) {
    if (c.name == name) return c;
  }
  static const CheckResult none{"(missing)", CheckOutcome::skipped, "no such check", {}, {}};
  return none;
}

}  // namespace scxkit::testing
