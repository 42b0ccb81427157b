#include "scxkit/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/kernel_files.hpp"
#include "common/process.hpp"

namespace scxkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Waits (bounded) until `pid` is no longer a live process.
bool gone_within(pid_t pid, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (internal::process_running(pid)) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Only async-signal-safe calls: the child of a fork in a (sanitizer-)threaded process.
void join_by_procs_files(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(3);
    close(fd);
  }
}

// Forks a helper that setsid()s (escaping its parent's process group) and
// sleeps forever ignoring SIGTERM; returns its pid through `fd`.
void fork_setsid_helper(int fd) {
  const pid_t g = fork();
  if (g == 0) {
    setsid();
    signal(SIGTERM, SIG_IGN);
    for (;;) pause();
  }
  if (write(fd, &g, sizeof(g)) != sizeof(g)) _exit(4);
}

pid_t read_pid(int fd) {
  pid_t pid = 0;
  return read(fd, &pid, sizeof(pid)) == sizeof(pid) ? pid : 0;
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = detect_cgroup_layout();
    ASSERT_TRUE(l) << l.error().message;
    layout_ = *l;
    parent_ = fmt::format("scxkit-test-{}", getpid());
    auto probe = Cgroup::create_run(layout_, parent_);
    if (!probe) GTEST_SKIP() << "cannot create cgroups here: " << probe.error().message;
  }

  CgroupLayout layout_;
  std::string parent_;
};

TEST_F(CgroupTest, HoldsAProcessAndItsSetsidHelperAndKillsThemAsAWhole) {
  auto run = Cgroup::create_run(layout_, parent_);
  ASSERT_TRUE(run) << run.error().message;
  auto box = run->create_child("box");
  ASSERT_TRUE(box) << box.error().message;
  EXPECT_EQ(box->path(), run->path() + "/box");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const auto files = box->procs_files();
  const pid_t p = fork();
  if (p == 0) {
    join_by_procs_files(files);
    fork_setsid_helper(fds[1]);
    for (;;) pause();
  }
  const pid_t helper = read_pid(fds[0]);
  close(fds[0]);
  close(fds[1]);
  ASSERT_GT(helper, 0);
  auto members = box->pids();
  ASSERT_TRUE(members) << members.error().message;
  std::sort(members->begin(), members->end());
  EXPECT_EQ(*members, (std::vector<pid_t>{std::min(p, helper), std::max(p, helper)}));
  auto in_run = run->pids();
  ASSERT_TRUE(in_run);
  EXPECT_EQ(in_run->size(), 2U) << "a parent's list includes its children's members";

  auto killed = box->kill(2s);
  ASSERT_TRUE(killed) << killed.error().message;
  EXPECT_EQ(killed->size(), 2U);
  int status = 0;
  ASSERT_EQ(waitpid(p, &status, 0), p);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(gone_within(helper, 2s)) << "the setsid() helper survived";
  auto after = box->pids();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());

  const auto dirs = run->directories();
  ASSERT_TRUE(box->remove(2s));
  ASSERT_TRUE(run->remove(2s));
  for (const auto& d : dirs) EXPECT_FALSE(fs::exists(d)) << d;
  for (const auto& m : layout_.mounts) {
    EXPECT_FALSE(fs::exists(m.mount_point + "/" + parent_)) << "an emptied run parent is pruned";
  }
}

TEST_F(CgroupTest, WithoutCgroupKillAFreezeAndKillLoopEmptiesAForkingGroup) {
  CgroupLayout v1_only;
  for (const auto& m : layout_.mounts) {
    if (m.version == 1) v1_only.mounts.push_back(m);
  }
  if (v1_only.for_controller("freezer") == nullptr) GTEST_SKIP() << "no v1 freezer on this host";
  auto run = Cgroup::create_run(v1_only, parent_);
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_FALSE(run->has_kill_file());
  EXPECT_NE(run->directories().front().find("freezer"), std::string::npos);
  const auto files = run->procs_files();
  const pid_t p = fork();
  if (p == 0) {
    join_by_procs_files(files);
    // Keeps forking children that sleep: the loop must catch the ones born meanwhile.
    for (int i = 0; i < 200; ++i) {
      if (fork() == 0) {
        for (;;) pause();
      }
      usleep(1000);
    }
    for (;;) pause();
  }
  std::this_thread::sleep_for(50ms);
  auto killed = run->kill(3s);
  ASSERT_TRUE(killed) << killed.error().message;
  EXPECT_GT(killed->size(), 1U);
  ASSERT_EQ(waitpid(p, nullptr, 0), p);
  for (pid_t pid : *killed) EXPECT_TRUE(gone_within(pid, 2s)) << pid;
  auto after = run->pids();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
  EXPECT_TRUE(run->remove(2s));
}

TEST_F(CgroupTest, CpuWeightAndCpusetReachTheKernelInEitherLayout) {
  auto run =
      Cgroup::create_run(layout_, parent_, CgroupControllers::cpu | CgroupControllers::cpuset);
  if (!run && run.error().code == Errc::unsupported) GTEST_SKIP() << run.error().message;
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_TRUE(run->set_cpus("0")) << "cpuset.cpus";
  ASSERT_TRUE(run->set_mems("0"));
  ASSERT_TRUE(run->set_cpu_weight(200));
  const CgroupMount* cpu = layout_.for_controller("cpu");
  const CgroupMount* cpuset = layout_.for_controller("cpuset");
  const std::string cpu_dir = cpu->mount_point + "/" + run->path();
  const std::string cpuset_dir = cpuset->mount_point + "/" + run->path();
  if (cpu->version == 1) {
    EXPECT_EQ(*internal::read_kernel_file(cpu_dir + "/cpu.shares"), "2048\n");
  } else {
    EXPECT_EQ(*internal::read_kernel_file(cpu_dir + "/cpu.weight"), "200\n");
  }
  EXPECT_EQ(*internal::read_kernel_file(cpuset_dir + "/cpuset.cpus"), "0\n");

  const pid_t p = fork();
  if (p == 0) {
    for (;;) pause();
  }
  ASSERT_TRUE(run->add(p));
  const std::string status = *internal::read_kernel_file(fmt::format("/proc/{}/status", p));
  EXPECT_NE(status.find("Cpus_allowed_list:\t0\n"), std::string::npos) << status;
  const std::string membership = *internal::read_kernel_file(fmt::format("/proc/{}/cgroup", p));
  std::size_t lines_naming_it = 0;
  for (std::size_t at = 0;
       (at = membership.find(":/" + run->path() + "\n", at)) != std::string::npos; ++at) {
    ++lines_naming_it;
  }
  EXPECT_EQ(lines_naming_it, run->directories().size()) << "a member in every hierarchy\n"
                                                        << membership;
  EXPECT_EQ(run->set_cpu_weight(0).error().code, Errc::invalid_argument);
  EXPECT_EQ(run->set_cpu_weight(10001).error().code, Errc::invalid_argument);
  ASSERT_TRUE(run->remove(2s));
  ASSERT_EQ(waitpid(p, nullptr, 0), p);
}

TEST_F(CgroupTest, StaleRunsOfADeadOwnerAreKilledAndRemovedLiveOnesStay) {
  auto mine = Cgroup::create_run(layout_, parent_);
  ASSERT_TRUE(mine) << mine.error().message;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t owner = fork();
  if (owner == 0) {
    // A run whose owner is SIGKILLed: no destructor runs, a helper stays inside.
    auto run = Cgroup::create_run(layout_, parent_);
    if (!run || !run->add(getpid())) _exit(2);
    fork_setsid_helper(fds[1]);
    raise(SIGKILL);
  }
  const pid_t helper = read_pid(fds[0]);
  close(fds[0]);
  close(fds[1]);
  ASSERT_GT(helper, 0);
  ASSERT_EQ(waitpid(owner, nullptr, 0), owner);
  ASSERT_TRUE(internal::process_running(helper));
  const std::string stale_prefix = fmt::format("run-{}-", owner);
  const auto stale_dirs = [&] {
    std::vector<std::string> found;
    for (const auto& m : layout_.mounts) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(m.mount_point + "/" + parent_, ec)) {
        if (e.path().filename().string().rfind(stale_prefix, 0) == 0) found.push_back(e.path());
      }
    }
    return found;
  };
  ASSERT_FALSE(stale_dirs().empty());

  auto removed = remove_stale_cgroup_runs(layout_, parent_);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 1U);
  EXPECT_TRUE(gone_within(helper, 2s)) << "the dead run's helper survived";
  EXPECT_EQ(stale_dirs(), std::vector<std::string>{});
  for (const auto& d : mine->directories()) EXPECT_TRUE(fs::exists(d)) << "a live run was removed";
}

TEST_F(CgroupTest, BadPathsNamesAndMissingControllersAreClearErrors) {
  for (const char* bad : {"../escape", "/absolute", "a//b", "a/./b", "", "trailing/"}) {
    auto cg = Cgroup::create(layout_, bad);
    ASSERT_FALSE(cg) << bad;
    EXPECT_EQ(cg.error().code, Errc::invalid_argument) << bad;
  }
  auto run = Cgroup::create_run(layout_, parent_);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->create_child("a/b").error().code, Errc::invalid_argument);
  EXPECT_EQ(run->create_child("..").error().code, Errc::invalid_argument);
  auto twice = Cgroup::create(layout_, run->path());
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::already_exists);
  EXPECT_EQ(run->set_cpus("0").error().code, Errc::invalid_argument);
  EXPECT_EQ(run->set_cpu_weight(100).error().code, Errc::invalid_argument);
  auto none = Cgroup::create(CgroupLayout{}, "scxkit-nowhere");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::unsupported);
}

TEST_F(CgroupTest, WithoutRootCreatingFailsWithAClearError) {
  if (geteuid() != 0) GTEST_SKIP() << "this test drops root; it is not root to begin with";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t p = fork();
  if (p == 0) {
    close(fds[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    auto run = Cgroup::create_run(layout_, parent_);
    const std::string msg =
        run ? "created" : fmt::format("{}|{}", run.error().sys_errno, run.error().message);
    if (write(fds[1], msg.data(), msg.size()) < 0) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  std::string msg(4096, '\0');
  const ssize_t n = read(fds[0], msg.data(), msg.size());
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(p, &status, 0), p);
  ASSERT_GT(n, 0);
  msg.resize(static_cast<std::size_t>(n));
  const int err = std::atoi(msg.c_str());
  EXPECT_TRUE(err == EACCES || err == EPERM || err == EROFS) << msg;
  EXPECT_NE(msg.find("needs root"), std::string::npos) << msg;
}

}  // namespace
}  // namespace scxkit
