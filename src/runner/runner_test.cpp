// Each check proven both ways on real processes: a workload built to pass and
// one built to fail. Pass workloads sit on the first CPU, hogs on the second.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "runner/run_test_support.hpp"
#include "scxkit/run.hpp"

namespace scxkit {
namespace {

using testing::check;
using testing::worker;

// Calls `on_start` once the scenario's cgroups exist and its workers run.
class OnStart : public RunObserver {
 public:
  explicit OnStart(std::function<void(const std::map<std::string, std::vector<std::string>>&)> f)
      : f_(std::move(f)) {}
  void started(const Scenario&,
               const std::map<std::string, std::vector<std::string>>& dirs) override {
    f_(dirs);
  }

 private:
  std::function<void(const std::map<std::string, std::vector<std::string>>&)> f_;
};

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = testing::cannot_run_here()) GTEST_SKIP() << *why;
    auto host = CpuSet::allowed();
    first_ = CpuSet::of({host->cpus().front()});
    second_ = CpuSet::of({host->cpus()[1]});
  }
  void TearDown() override { testing::expect_no_leftover_cgroups(testing::test_cgroup_parent()); }

  Scenario base(std::string name) {
    Scenario s;
    s.name = std::move(name);
    s.duration = Millis(1500);
    s.cgroups = {{"a", {}, {}}};
    return s;
  }
  WorkerSpec hog_on_second() {
    WorkerSpec hog = worker("hog", "", WorkType::spin, second_);
    hog.rt_priority = 1;
    return hog;
  }
  ScenarioResult run(const Scenario& s, RunObserver* observer = nullptr,
                     std::string kernel_log = "") {
    RunOptions o = testing::test_options();
    o.observer = observer;
    o.kernel_log = std::move(kernel_log);
    auto report = run_scenarios({s}, o);
    EXPECT_TRUE(report) << (report ? "" : report.error().message);
    if (!report || report->scenarios.size() != 1) return {};
    EXPECT_EQ(report->scenarios[0].error, "");
    return report->scenarios[0];
  }

  CpuSet first_, second_;
};

TEST_F(RunnerTest, StarvationPassesAloneAndFailsUnderAFifoHogOnTheWorkersOnlyCpu) {
  Scenario s = base("starvation");
  // Default thresholds: Linux's fair server still gives a CFS task under a FIFO
  // hog ~5% of its CPU, far below a fair share of a CPU the two share; a worker
  // alone on a CPU of a busy machine gets about its fair share.
  s.workers = {worker("alone", "a", WorkType::spin, first_)};
  const auto pass = run(s);
  EXPECT_EQ(check(pass, "starvation").outcome, CheckOutcome::pass)
      << check(pass, "starvation").summary;

  s.workers = {worker("victim", "a", WorkType::spin, second_), hog_on_second()};
  const auto fail = run(s);
  const auto& c = check(fail, "starvation");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  ASSERT_EQ(c.findings.size(), 1u);
  EXPECT_NE(c.findings[0].find("victim.0 ran"), std::string::npos) << c.findings[0];
  EXPECT_NE(c.findings[0].find("a fair share was"), std::string::npos) << c.findings[0];
}

TEST_F(RunnerTest, StuckPassesForARunningWorkerAndFailsForOneBehindAFifoHog) {
  Scenario s = base("stuck");
  s.thresholds.max_gap = Millis(300);  // the fair server lets a victim run every 0.5-1 s
  s.workers = {worker("alone", "a", WorkType::spin, first_)};
  const auto pass = run(s);
  EXPECT_EQ(check(pass, "stuck").outcome, CheckOutcome::pass) << check(pass, "stuck").summary;

  s.workers = {worker("victim", "a", WorkType::spin, second_), hog_on_second()};
  const auto fail = run(s);
  const auto& c = check(fail, "stuck");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  EXPECT_NE(c.findings[0].find("victim.0"), std::string::npos) << c.findings[0];
  EXPECT_TRUE(c.at_s.has_value());
}

TEST_F(RunnerTest, FairnessPassesForEqualPeersAndFailsWhenOneIsRenicedBehindItsBack) {
  Scenario s = base("fairness");
  s.workers = {worker("peer", "a", WorkType::spin, first_, 2)};
  const auto pass = run(s);
  EXPECT_EQ(check(pass, "fairness").outcome, CheckOutcome::pass) << check(pass, "fairness").summary;

  // The harness believes both are nice 0; one is made nice 19 behind its back.
  OnStart renice([](const auto& dirs) {
    std::ifstream procs(dirs.at("a").front() + "/cgroup.procs");
    pid_t pid = 0;
    ASSERT_TRUE(procs >> pid);
    ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(pid), 19), 0);
  });
  const auto fail = run(s, &renice);
  const auto& c = check(fail, "fairness");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  EXPECT_NE(c.findings[0].find("cgroup 'a' spin peers"), std::string::npos) << c.findings[0];
}

TEST_F(RunnerTest, IsolationPassesInsideTheCpusetAndFailsWhenItIsWidenedBehindItsBack) {
  Scenario s = base("isolation");
  s.cgroups = {{"a", first_, {}}};
  s.workers = {worker("spin", "a", WorkType::spin, std::nullopt, 3)};
  const auto pass = run(s);
  EXPECT_EQ(check(pass, "isolation").outcome, CheckOutcome::pass)
      << check(pass, "isolation").summary;
  for (const auto& w : pass.workers) EXPECT_EQ(w.ran_on(), first_) << w.name;

  // Widened to both CPUs; then one worker is steered to the new CPU, which
  // the widened cpuset now permits (and the load balancer may not get to).
  const CpuSet both = first_ | second_;
  OnStart widen([&](const auto& dirs) {
    for (const auto& dir : dirs.at("a")) {
      std::ofstream cpus(dir + "/cpuset.cpus");
      if (cpus) cpus << both.to_string();  // only the cpuset hierarchy has the file
    }
    std::ifstream procs(dirs.at("a").front() + "/cgroup.procs");
    pid_t pid = 0;
    ASSERT_TRUE(procs >> pid);
    const cpu_set_t second = second_.to_native();
    ASSERT_EQ(sched_setaffinity(pid, sizeof(second), &second), 0) << std::strerror(errno);
  });
  const auto fail = run(s, &widen);
  const auto& c = check(fail, "isolation");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  EXPECT_NE(c.findings[0].find("outside its allowed CPUs " + first_.to_string()), std::string::npos)
      << c.findings[0];
}

TEST_F(RunnerTest, WakeLatencyPassesForAnRtSleeperAndFailsForOneBehindAHigherFifoHog) {
  Scenario s = base("wake");
  s.thresholds.max_wake_p99_us = 100'000;
  // A real-time sleeper: the fair server that rescues CFS tasks from a FIFO
  // hog does nothing for it. The hog starts once the sleeper is in its sleep
  // loop (workers starting together may run in either order) and the sleeper
  // stops 40 ms after it, so its wake-up that waited out the hog is more than
  // 1% of its wake-ups (1 ms sleeps: about 60 in all).
  WorkerSpec sleeper = worker("sleeper", "a", WorkType::io_sleep, second_);
  sleeper.rt_priority = 1;
  sleeper.stop = Millis(1040);
  s.workers = {sleeper};
  const auto pass = run(s);
  const auto& p = check(pass, "wake_latency");
  EXPECT_EQ(p.outcome, CheckOutcome::pass) << p.summary;
  ASSERT_EQ(pass.workers.size(), 1u);
  EXPECT_GT(pass.workers[0].wake.count, 100u);

  WorkerSpec hog = hog_on_second();
  hog.rt_priority = 2;
  hog.start = Millis(20);
  hog.stop = Millis(1000);
  s.workers = {sleeper, hog};
  const auto fail = run(s);
  const auto& c = check(fail, "wake_latency");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  EXPECT_NE(c.findings[0].find("sleeper.0"), std::string::npos) << c.findings[0];
}

TEST_F(RunnerTest, KernelCheckPassesOnAQuietLogAndFailsQuotingALineLoggedDuringTheRun) {
  if (access("/dev/kmsg", R_OK | W_OK) != 0)
    GTEST_SKIP() << "/dev/kmsg is not readable and writable";
  const std::string tag = fmt::format("scxkit-test-{}-kernel-trouble", getpid());
  Scenario s = base("kernel");
  s.duration = Millis(800);
  s.thresholds.kernel_patterns = {tag};
  s.workers = {worker("spin", "a", WorkType::spin, first_)};
  const auto pass = run(s, nullptr, "/dev/kmsg");
  EXPECT_EQ(check(pass, "kernel").outcome, CheckOutcome::pass) << check(pass, "kernel").summary;

  OnStart log([&](const auto&) {
    const int fd = open("/dev/kmsg", O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string line = "<4>" + tag + ": a line the kernel check must quote\n";
    EXPECT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    close(fd);
  });
  const auto fail = run(s, &log, "/dev/kmsg");
  const auto& c = check(fail, "kernel");
  ASSERT_EQ(c.outcome, CheckOutcome::fail) << c.summary;
  ASSERT_EQ(c.findings.size(), 1u);
  EXPECT_NE(c.findings[0].find(tag + ": a line the kernel check must quote"), std::string::npos)
      << c.findings[0];
}

}  // namespace
}  // namespace scxkit
