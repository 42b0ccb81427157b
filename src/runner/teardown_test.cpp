// Nothing a run starts outlives it: not after a normal end, not after a stop
// request, not after SIGKILL of the runner (its workers die with it, and the
// next run clears the cgroups it left). And runs work on either cgroup layout.
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "runner/run_test_support.hpp"
#include "scxkit/run.hpp"

namespace scxkit {
namespace {

using namespace std::chrono_literals;
using testing::check;
using testing::worker;

class TeardownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::cannot_run_here()) GTEST_SKIP() << *why;
  }
  void TearDown() override { testing::expect_no_leftover_cgroups(testing::test_cgroup_parent()); }
};

// Every process in or under `dir` (cgroup.procs files, recursively).
void collect_pids(const std::string& dir, std::set<pid_t>& out) {
  std::ifstream procs(dir + "/cgroup.procs");
  for (pid_t p; procs >> p;) out.insert(p);
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') collect_pids(dir + "/" + e->d_name, out);
    }
    closedir(d);
  }
}

// Children of `parent` per /proc, and theirs.
std::set<pid_t> descendants(pid_t parent) {
  std::map<pid_t, pid_t> ppid;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      std::ifstream stat(fmt::format("/proc/{}/stat", pid));
      std::string text;
      std::getline(stat, text);
      const auto paren = text.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream rest(text.substr(paren + 2));
      char state;
      pid_t pp;
      if (rest >> state >> pp) ppid[pid] = pp;
    }
    closedir(d);
  }
  std::set<pid_t> out{parent};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, pp] : ppid) {
      if (out.count(pp) != 0 && out.insert(pid).second) grew = true;
    }
  }
  out.erase(parent);
  return out;
}

bool gone(pid_t pid) {
  waitpid(pid, nullptr, WNOHANG);  // ours if the kernel reparented it to this subreaper
  return kill(pid, 0) != 0 && errno == ESRCH;
}

Scenario busy_scenario(Millis duration) {
  Scenario s;
  s.name = "busy";
  s.duration = duration;
  s.cgroups = {{"a", {}, {}}, {"b", {}, {}}};
  s.workers = {worker("spin", "a", WorkType::spin), worker("forks", "a", WorkType::fork_churn),
               worker("mutex", "b", WorkType::mutex), worker("pipe", "b", WorkType::pipe_pingpong)};
  return s;
}

TEST_F(TeardownTest, ASigkilledRunLeavesNoProcessAndTheNextRunClearsItsCgroups) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // orphans come here, to be reaped and counted
  auto layout = detect_cgroup_layout();
  ASSERT_TRUE(layout);
  const std::string parent = testing::test_cgroup_parent();
  const pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    RunOptions o = testing::test_options();
    o.cgroup_parent = parent;
    (void)run_scenarios({busy_scenario(Millis(30'000))}, o);
    _exit(0);
  }
  // Wait until the run's workers sit in their cgroups.
  std::set<pid_t> members;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (members.size() < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    members.clear();
    for (const auto& m : layout->mounts) collect_pids(m.mount_point + "/" + parent, members);
  }
  ASSERT_GE(members.size(), 4u) << "the run's workers never showed up in its cgroups";
  std::set<pid_t> all = descendants(runner);
  all.insert(members.begin(), members.end());

  std::cout << "the run had " << all.size() << " processes when it was killed\n";
  ASSERT_EQ(kill(runner, SIGKILL), 0);
  ASSERT_EQ(waitpid(runner, nullptr, 0), runner);
  const auto gone_by = std::chrono::steady_clock::now() + 10s;
  std::set<pid_t> left = all;
  while (!left.empty() && std::chrono::steady_clock::now() < gone_by) {
    for (auto it = left.begin(); it != left.end();) it = gone(*it) ? left.erase(it) : std::next(it);
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(left.empty()) << left.size() << " processes of the killed run survived it, e.g. "
                            << *left.begin();

  // The dead run's cgroups are still there until the next run starts.
  struct stat st {};
  bool stale = false;
  for (const auto& m : layout->mounts)
    stale |= stat((m.mount_point + "/" + parent).c_str(), &st) == 0;
  EXPECT_TRUE(stale);
  Scenario quick = busy_scenario(Millis(300));
  auto next = run_scenarios({quick}, testing::test_options());
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->scenarios[0].error, "");
}

class SetAfter : public RunObserver {
 public:
  SetAfter(std::atomic<bool>& flag, double at_s) : flag_(flag), at_s_(at_s) {}
  void progress(const Scenario&, double elapsed_s, std::uint64_t, std::size_t) override {
    if (elapsed_s >= at_s_) flag_.store(true);
  }

 private:
  std::atomic<bool>& flag_;
  double at_s_;
};

TEST_F(TeardownTest, AStopRequestEndsTheRunEarlyInterruptedAndCleansUp) {
  std::atomic<bool> stop{false};
  SetAfter ctrl_c(stop, 0.3);
  RunOptions o = testing::test_options();
  o.stop = &stop;
  o.observer = &ctrl_c;
  const auto t0 = std::chrono::steady_clock::now();
  auto report = run_scenarios({busy_scenario(Millis(20'000)), busy_scenario(Millis(20'000))}, o);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_TRUE(report->interrupted);
  EXPECT_FALSE(report->passed());
  ASSERT_EQ(report->scenarios.size(), 1u);
  EXPECT_TRUE(report->scenarios[0].interrupted);
  EXPECT_EQ(descendants(getpid()).size(), 0u);
}

CgroupLayout only_version(int version) {
  CgroupLayout l = *detect_cgroup_layout();
  std::erase_if(l.mounts, [&](const CgroupMount& m) { return m.version != version; });
  return l;
}

TEST_F(TeardownTest, RunsOnTheCgroupV2TreeAndOnV1ControllersAlone) {
  for (int version : {1, 2}) {
    CgroupLayout layout = only_version(version);
    if (layout.mounts.empty()) {
      std::cout << "cgroup v" << version << " is not mounted here: that layout is not tested\n";
      continue;
    }
    SCOPED_TRACE(fmt::format("cgroup v{} alone: {}", version, layout.summary()));
    RunOptions o = testing::test_options();
    o.layout = layout;
    Scenario s = busy_scenario(Millis(600));
    auto report = run_scenarios({s}, o);
    ASSERT_TRUE(report) << report.error().message;
    const auto& r = report->scenarios[0];
    EXPECT_EQ(r.error, "");
    for (const auto& w : r.workers) EXPECT_GT(w.ops, 0u) << w.name;
    EXPECT_EQ(descendants(getpid()).size(), 0u);

    // A cpuset needs a hierarchy with the cpuset controller; without one the
    // scenario fails with a message that says so.
    s.cgroups[0].cpus = CpuSet::of({0});
    report = run_scenarios({s}, o);
    ASSERT_TRUE(report) << report.error().message;
    if (layout.for_controller("cpuset") == nullptr) {
      EXPECT_NE(report->scenarios[0].error.find("'cpuset' controller"), std::string::npos)
          << report->scenarios[0].error;
    } else {
      EXPECT_EQ(report->scenarios[0].error, "");
      EXPECT_EQ(check(report->scenarios[0], "isolation").outcome, CheckOutcome::pass);
    }
  }
}

TEST_F(TeardownTest, EveryWorkTypeMakesProgressAndReportsWhatItMeasures) {
  Scenario s;
  s.name = "all-types";
  s.duration = Millis(1500);
  s.cgroups = {{"a", {}, 100}};
  for (WorkType t : {WorkType::spin, WorkType::yield, WorkType::bursty, WorkType::pipe_pingpong,
                     WorkType::futex_pingpong, WorkType::io_sleep, WorkType::fork_churn,
                     WorkType::mutex, WorkType::page_fault}) {
    s.workers.push_back(worker(std::string(to_string(t)), "a", t));
  }
  auto report = run_scenarios({s}, testing::test_options());
  ASSERT_TRUE(report) << report.error().message;
  const auto& r = report->scenarios[0];
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.workers.size(), 9u);
  for (const auto& w : r.workers) {
    SCOPED_TRACE(w.name);
    EXPECT_EQ(w.failure, "");
    EXPECT_GT(w.ops, 0u);
    EXPECT_GT(w.cpu_ns, 0u);
    EXPECT_FALSE(w.ran_on().empty());
    EXPECT_GT(w.active_s, 1.0);
    EXPECT_FALSE(w.cpu_share_timeline.empty());
    const bool wakes = w.work == WorkType::bursty || w.work == WorkType::io_sleep ||
                       w.work == WorkType::pipe_pingpong || w.work == WorkType::futex_pingpong;
    EXPECT_EQ(w.wake.count > 0, wakes) << w.wake.count;
  }
  EXPECT_EQ(descendants(getpid()).size(), 0u);
}

}  // namespace
}  // namespace scxkit
