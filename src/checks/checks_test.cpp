#include "scxkit/checks.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace scxkit {
namespace {

TEST(KernelTrouble, KnowsTheKernelsWordsForStallsLockupsHungTasksAndSchedExtErrors) {
  EXPECT_EQ(kernel_trouble_kind("rcu: INFO: rcu_preempt self-detected stall on CPU"), "RCU stall");
  EXPECT_EQ(kernel_trouble_kind("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            "RCU stall");
  EXPECT_EQ(kernel_trouble_kind("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:123]"),
            "soft lockup");
  EXPECT_EQ(kernel_trouble_kind("Watchdog detected hard LOCKUP on cpu 1"), "hard lockup");
  EXPECT_EQ(kernel_trouble_kind("INFO: task kworker/0:1:42 blocked for more than 120 seconds."),
            "hung task");
  EXPECT_EQ(kernel_trouble_kind("sched_ext: BPF scheduler \"lavd\" disabled (runnable task stall)"),
            "sched_ext error");
  EXPECT_EQ(
      kernel_trouble_kind("sched_ext: simple: runnable task stall (kworker[1] failed to run)"),
      "sched_ext error");
  // A scheduler unregistered on purpose is no trouble; neither is ordinary chatter.
  EXPECT_EQ(kernel_trouble_kind(
                "sched_ext: BPF scheduler \"simple\" disabled (unregistered from user space)"),
            "");
  EXPECT_EQ(kernel_trouble_kind("sched_ext: BPF scheduler \"simple\" enabled"), "");
  EXPECT_EQ(kernel_trouble_kind("e1000: eth0 NIC Link is Up"), "");
}

WorkerResult pinned(std::string name, int cpu, double cpu_s, double wait_s, int nice = 0) {
  WorkerResult w;
  w.name = std::move(name);
  w.nice = nice;
  w.active_s = 1;
  w.cpu_ns = static_cast<std::uint64_t>(cpu_s * 1e9);
  w.wait_ns = static_cast<std::uint64_t>(wait_s * 1e9);
  w.placements = {{0, CpuSet::of({cpu}), CpuSet::of({cpu})}};
  return w;
}

TEST(FairShare, OutsideLoadCountsWhereItsCpuTimeWentAndNiceValuesWeigh) {
  // One second on two CPUs, 6 outside tasks, all of whose time went to CPU 0;
  // CPU 1 held a victim and a hog that took 95% of it.
  MachineLoad m{.cpus = 2, .samples = 10, .runnable = 8, .outside = 6, .cpu_busy = {1.0, 1.0}};
  std::vector<WorkerResult> w = {pinned("victim", 1, 0.05, 0.95), pinned("hog", 1, 0.95, 0.05)};
  estimate_fair_shares(w, m, 1.0);
  EXPECT_NEAR(w[0].fair_share, 0.5, 0.01) << "a fair scheduler splits CPU 1 between the two";
  EXPECT_NEAR(w[0].contention, 2.0, 0.01);

  // The same outside load, its time spread evenly: 3 more tasks on CPU 1.
  m.cpu_busy = {1.0, 2.0};
  estimate_fair_shares(w, m, 1.0);
  EXPECT_NEAR(w[0].fair_share, 1.0 / 5, 0.01);

  // A nice-10 worker among three nice-0 tasks gets weight 110 of 110 + 3 x 1024.
  m = {.cpus = 1, .samples = 10, .runnable = 3, .outside = 2, .cpu_busy = {1.0}};
  w = {pinned("niced", 0, 0.03, 0.97, 10)};
  estimate_fair_shares(w, m, 1.0);
  EXPECT_NEAR(w[0].fair_share, 110.0 / (110 + 2 * 1024), 0.002);

  // Nothing measured: nothing claimed.
  w = {pinned("x", 0, 1, 0)};
  estimate_fair_shares(w, MachineLoad{}, 1.0);
  EXPECT_EQ(w[0].fair_share, 0);
}

TEST(FairShare, StarvationFailsBelowTheFairShareFractionNotBelowAnAbsoluteFloor) {
  Scenario s;
  s.name = "t";
  WorkerResult busy = pinned("crowded", 0, 0.08, 0.92);  // 8% while 10 per CPU: fine
  busy.fair_share = 0.1;
  WorkerResult starved = pinned("starved", 1, 0.05, 0.95);  // 5% where 50% was fair
  starved.fair_share = 0.5;
  for (auto* w : {&busy, &starved}) w->ops = 100;
  const auto checks = evaluate_checks(s, {busy, starved}, {});
  const auto& c = checks[0];
  ASSERT_EQ(c.name, "starvation");
  ASSERT_EQ(c.outcome, CheckOutcome::fail);
  ASSERT_EQ(c.findings.size(), 1u);
  EXPECT_NE(c.findings[0].find("starved ran 5.0% of the time it was runnable; a fair share was "
                               "50.0%"),
            std::string::npos)
      << c.findings[0];
}

class KernelLogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scxkit-kmsg-XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
    append("5,100,1000,-;an old stall from before: rcu: INFO: rcu_sched detected stalls\n");
  }
  void TearDown() override { unlink(path_.c_str()); }
  void append(const std::string& text) {
    std::ofstream out(path_, std::ios::app);
    out << text;
  }
  std::string path_;
};

TEST_F(KernelLogFile, ReportsOnlyTroubleLoggedAfterItOpenedWithKmsgPrefixesRemoved) {
  auto watch = KernelLogWatch::open(path_, {"my-fixture-.*-broke"});
  ASSERT_TRUE(watch) << watch.error().message;
  EXPECT_TRUE(watch->poll(0.1).empty());  // what was there before does not count
  append("6,101,2000,-;eth0: link up\n");
  append("4,102,3000,-;watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [w:9]\n SUBSYSTEM=cpu\n");
  append("3,103,4000,-;my-fixture-7-broke here\n");
  append("plain line: INFO: task x:1 blocked for more than 120 seconds.\n");
  append("4,104,5000,-;partial rcu: INFO: rcu_sched self-detected stall");  // no newline yet
  auto lines = watch->poll(1.5);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].kind, "soft lockup");
  EXPECT_EQ(lines[0].text, "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [w:9]");
  EXPECT_EQ(lines[0].at_s, 1.5);
  EXPECT_EQ(lines[1].kind, "pattern");
  EXPECT_EQ(lines[2].kind, "hung task");
  append(" on CPU\n");
  lines = watch->poll(2.0);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].kind, "RCU stall");
}

TEST(KernelLogWatchOpen, BadPatternsAndMissingLogsAreClearErrors) {
  auto bad = KernelLogWatch::open("/dev/null", {"("});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("kernel pattern '(' is not a valid regular expression"),
            std::string::npos);
  auto missing = KernelLogWatch::open("/nonexistent/kmsg");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("opening the kernel log /nonexistent/kmsg"),
            std::string::npos);
}

WorkerResult spinner(std::string name, double share, std::string cgroup = "a") {
  WorkerResult w;
  w.name = std::move(name);
  w.spec = "spin";
  w.cgroup = std::move(cgroup);
  w.active_s = 2;
  w.cpu_ns = static_cast<std::uint64_t>(share * 2e9);
  w.ops = static_cast<std::uint64_t>(share * 1000);
  return w;
}

TEST(Checks, JudgeResultsByTheScenariosThresholds) {
  Scenario s;
  s.thresholds.min_cpu_share = 0.1;
  s.thresholds.max_spread = 0.5;
  s.thresholds.max_gap = Millis(100);
  std::vector<WorkerResult> w = {spinner("a.0", 0.9), spinner("a.1", 0.3),
                                 spinner("b.0", 0.05, "b"), spinner("c.0", 0.0, "c")};
  w[2].max_gap_ms = 150;
  w[2].max_gap_at_s = 1.25;
  w[0].placements = {{0, CpuSet::of({0}), CpuSet::of({0, 1})}};
  w[1].wake.count = 50;
  w[1].wake.p99_us = 30000;
  const auto checks = evaluate_checks(s, w, {{0.5, "RCU stall", "rcu: INFO: detected stalls"}});
  ASSERT_EQ(checks.size(), 6u);
  EXPECT_EQ(checks[0].name, "starvation");
  EXPECT_EQ(checks[0].outcome, CheckOutcome::fail);
  ASSERT_EQ(checks[0].findings.size(), 2u);
  EXPECT_EQ(checks[0].findings[0], "b.0 got 5.0% of a CPU (minimum 10.0%)");
  EXPECT_EQ(checks[0].findings[1], "c.0 made no progress in 2.00 s");
  EXPECT_EQ(checks[1].outcome, CheckOutcome::fail);  // 0.9 vs 0.3: spread 0.67
  EXPECT_EQ(checks[2].outcome, CheckOutcome::fail);
  EXPECT_EQ(*checks[2].at_s, 1.25);
  EXPECT_EQ(checks[3].outcome, CheckOutcome::fail);
  EXPECT_EQ(checks[3].findings[0], "a.0 ran on CPU 1 outside its allowed CPUs 0 (from 0.00 s)");
  EXPECT_EQ(checks[4].outcome, CheckOutcome::fail);
  EXPECT_EQ(checks[5].outcome, CheckOutcome::fail);
  EXPECT_EQ(checks[5].findings[0], "[0.50 s] RCU stall: rcu: INFO: detected stalls");

  s.thresholds.fairness = false;
  s.thresholds.max_wake_p99_us = 40000;
  const auto relaxed = evaluate_checks(s, {w[0], w[1]}, {}, false);
  EXPECT_EQ(relaxed[1].outcome, CheckOutcome::skipped);
  EXPECT_EQ(relaxed[1].summary, "turned off for this scenario");
  EXPECT_EQ(relaxed[4].outcome, CheckOutcome::pass);
  EXPECT_EQ(relaxed[5].outcome, CheckOutcome::skipped);
  EXPECT_EQ(relaxed[5].summary, "the kernel log could not be watched");
}

}  // namespace
}  // namespace scxkit
