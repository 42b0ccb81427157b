// The scheduler lifecycle against a real sched_ext kernel and the example
// schedulers (examples/). The host kernel has none: these tests skip there,
// and the VM tier runs them inside Debian's sched_ext kernel
// (VmBoot.TheHarnessLifecycleHoldsAgainstTheRealKernel in src/vm).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "scxkit/scheduler.hpp"

namespace scxkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kSysfs = "/sys/kernel/sched_ext";

// State and ops settle within `limit`, or the last reading is returned.
SchedExtStatus settled(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  SchedExtStatus s = read_sched_ext_status(kSysfs);
  while ((s.state != "disabled" || !s.ops.empty()) && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    s = read_sched_ext_status(kSysfs);
  }
  return s;
}

class RealSchedExt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!read_sched_ext_status(kSysfs).present) {
      GTEST_SKIP() << "this kernel has no " << kSysfs
                   << " (built without CONFIG_SCHED_CLASS_EXT); the VM tier runs these tests "
                      "inside a sched_ext kernel";
    }
    char tmpl[] = "/tmp/scxkit-real-sched.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(settled(10s).state, "disabled") << "a scheduler is still attached";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // `example` is a compile-time path, or null when the examples were not built.
  SchedulerSpec spec(const char* example, std::vector<std::string> args = {}) {
    if (example == nullptr) return {};
    SchedulerSpec s;
    s.binary = example;
    s.args = std::move(args);
    s.log_path = (dir_ / "sched.log").string();
    // Emulated CPUs load BPF slowly and a loaded host slows them further.
    s.attach_timeout = 60s;
    s.stop_grace = 10s;
    s.kill_timeout = 5s;
    s.exit_settle = 10s;
    return s;
  }

  fs::path dir_;
};

#ifdef SCXKIT_EXAMPLE_VTIME
#define REQUIRE_EXAMPLES()
#else
#define REQUIRE_EXAMPLES() GTEST_SKIP() << "the example schedulers were not built"
#define SCXKIT_EXAMPLE_VTIME nullptr
#define SCXKIT_EXAMPLE_REJECT nullptr
#define SCXKIT_EXAMPLE_STALL nullptr
#define SCXKIT_EXAMPLE_ERROR nullptr
#endif

TEST_F(RealSchedExt, AttachesWithItsRealNameAndStopsGracefully) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_VTIME));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  EXPECT_EQ(s->name(), "vtime");
  EXPECT_GT(s->attach_time(), 0ms);
  EXPECT_LT(s->attach_time(), 60s);
  const SchedExtStatus on = read_sched_ext_status(kSysfs);
  EXPECT_EQ(on.state, "enabled");
  EXPECT_EQ(on.ops, "vtime");
  EXPECT_FALSE(s->watch(1s));
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_TRUE(stopped->kernel_detached);
  EXPECT_FALSE(stopped->needed_kill);
  EXPECT_EQ(stopped->exit.code, 0) << stopped->exit.describe();
  EXPECT_EQ(settled(10s).state, "disabled");
  ASSERT_TRUE(stopped->kernel_exit) << "the kernel logs why it disabled the scheduler";
  EXPECT_EQ(stopped->kernel_exit->kind, ScxExitKind::unreg) << stopped->kernel_exit->line;
  ASSERT_TRUE(stopped->loader_exit) << "the loader prints the exit record";
  EXPECT_EQ(stopped->loader_exit->kind, ScxExitKind::unreg) << stopped->loader_exit->line;
  EXPECT_EQ(stopped->loader_exit->reason, "unregistered from user space");
  std::printf("vtime: attached %lld ms after start, stopped in %lld ms\n",
              static_cast<long long>(s->attach_time().count()),
              static_cast<long long>(stopped->took.count()));
}

// CPU time (ns) a task has run, from /proc/<pid>/schedstat.
std::uint64_t ran_ns(pid_t pid) {
  std::ifstream in(fs::path("/proc") / std::to_string(pid) / "schedstat");
  std::uint64_t ns = 0;
  in >> ns;
  return ns;
}

// A child spinning on CPU 0 at `nice`, until killed.
pid_t spin_on_cpu0(int nice) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof(one), &one) != 0 || setpriority(PRIO_PROCESS, 0, nice) != 0) {
    _exit(1);
  }
  for (;;) asm volatile("" ::: "memory");  // spins; the compiler may not drop the loop
}

TEST_F(RealSchedExt, VtimeSharesACpuByWeight) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_VTIME));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  // nice 0 is weight 100 to sched_ext, nice 5 weight 33 (335/1024 of it): vtime
  // charges the lighter task three times as much per slice it runs.
  const pid_t heavy = spin_on_cpu0(0), light = spin_on_cpu0(5);
  ASSERT_GT(heavy, 0);
  ASSERT_GT(light, 0);
  std::this_thread::sleep_for(500ms);  // both queued on CPU 0 by now
  // Six windows of 500 ms, and their median ratio: when the host starves the
  // emulator, the guest's clock jumps, and the task that was running is
  // charged the whole gap — one window goes wrong, not the median.
  std::vector<double> ratios;
  std::uint64_t heavy_ran = 0, light_ran = 0;
  std::uint64_t heavy_at = ran_ns(heavy), light_at = ran_ns(light);
  for (int window = 0; window < 6; ++window) {
    std::this_thread::sleep_for(500ms);
    const std::uint64_t h = ran_ns(heavy), l = ran_ns(light);
    heavy_ran += h - heavy_at;
    light_ran += l - light_at;
    ratios.push_back(
        l > light_at ? static_cast<double>(h - heavy_at) / static_cast<double>(l - light_at) : 1e9);
    heavy_at = h;
    light_at = l;
  }
  for (pid_t pid : {heavy, light}) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  EXPECT_FALSE(s->watch(10ms)) << "vtime was kicked out while the spinners ran";
  ASSERT_TRUE(s->stop());
  ASSERT_GT(light_ran, 0u) << "the nice 5 spinner never ran";
  std::sort(ratios.begin(), ratios.end());
  const double ratio = (ratios[2] + ratios[3]) / 2;
  std::printf(
      "vtime: nice 0 ran %.0f ms, nice 5 ran %.0f ms on CPU 0 (median ratio of 6 windows %.2f, "
      "weights 3.03)\n",
      heavy_ran / 1e6, light_ran / 1e6, ratio);
  EXPECT_GT(ratio, 2.0);
  EXPECT_LT(ratio, 4.5);
}

TEST_F(RealSchedExt, AVerifierRejectionIsADeathDuringTheLivenessGateWithTheVerifierLines) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_REJECT));
  ASSERT_FALSE(s) << "the verifier accepted the reject fixture";
  const auto* died = std::get_if<DiedDuringLiveness>(&s.error());
  ASSERT_NE(died, nullptr) << problem_of(s.error()).message;
  EXPECT_FALSE(died->had_attached);
  EXPECT_EQ(died->exit.code, 1) << died->exit.describe();
  EXPECT_NE(died->verifier.find("invalid access to map value, value_size=8 off=24 size=8"),
            std::string::npos)
      << died->verifier;
  EXPECT_NE(died->message.find("The verifier refused"), std::string::npos) << died->message;
  EXPECT_NE(died->message.find("invalid access to map value, value_size=8 off=24 size=8"),
            std::string::npos)
      << died->message;
  const SchedExtStatus after = read_sched_ext_status(kSysfs);
  EXPECT_EQ(after.state, "disabled");
  EXPECT_EQ(after.ops, "");
}

TEST_F(RealSchedExt, AStalledTaskGetsTheSchedulerKickedOutWithErrorStall) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_STALL, {"--timeout-ms", "2000"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  EXPECT_EQ(s->name(), "stall");
  auto trouble = s->watch(60s);
  ASSERT_TRUE(trouble) << "the watchdog did not kick the stall fixture out within 60 s";
  ASSERT_TRUE(trouble->kernel_exit) << trouble->message;
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::error_stall) << trouble->kernel_exit->line;
  EXPECT_NE(trouble->kernel_exit->message.find("stall_victim["), std::string::npos)
      << trouble->kernel_exit->message;
  EXPECT_NE(trouble->kernel_exit->message.find("failed to run for"), std::string::npos)
      << trouble->kernel_exit->message;
  EXPECT_NE(trouble->message.find("failed to run for"), std::string::npos) << trouble->message;
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  ASSERT_TRUE(stopped->loader_exit) << "the loader prints the exit record";
  EXPECT_EQ(stopped->loader_exit->kind, ScxExitKind::error_stall) << stopped->loader_exit->line;
  EXPECT_EQ(stopped->loader_exit->message, trouble->kernel_exit->message);
  EXPECT_EQ(settled(10s).state, "disabled");
}

TEST_F(RealSchedExt, ScxBpfErrorGetsTheSchedulerKickedOutWithErrorBpfAndItsMessage) {
  REQUIRE_EXAMPLES();
  // Armed well after the liveness window, so the error falls while it runs.
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_ERROR, {"--after", "20", "--arm-ms", "1500"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  EXPECT_EQ(s->name(), "error");
  auto trouble = s->watch(60s);
  ASSERT_TRUE(trouble) << "the error fixture was not kicked out within 60 s";
  ASSERT_TRUE(trouble->kernel_exit) << trouble->message;
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::error_bpf) << trouble->kernel_exit->line;
  EXPECT_NE(trouble->kernel_exit->message.find(
                "error fixture: scx_bpf_error after 20 dispatches, as asked"),
            std::string::npos)
      << trouble->kernel_exit->message;
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  ASSERT_TRUE(stopped->loader_exit);
  EXPECT_EQ(stopped->loader_exit->kind, ScxExitKind::error_bpf) << stopped->loader_exit->line;
  EXPECT_NE(stopped->loader_exit->message.find("after 20 dispatches"), std::string::npos);
  EXPECT_EQ(settled(10s).state, "disabled");
}

TEST_F(RealSchedExt, SysrqSGetsTheSchedulerKickedOutWithSysrq) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_VTIME));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  const int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << "cannot open /proc/sysrq-trigger";
  ASSERT_EQ(write(fd, "S", 1), 1);
  close(fd);
  auto trouble = s->watch(30s);
  ASSERT_TRUE(trouble) << "sysrq-S did not detach the scheduler within 30 s";
  ASSERT_TRUE(trouble->kernel_exit) << trouble->message;
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::sysrq) << trouble->kernel_exit->line;
  EXPECT_EQ(trouble->kernel_exit->reason, "disabled by sysrq-S");
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  ASSERT_TRUE(stopped->loader_exit);
  EXPECT_EQ(stopped->loader_exit->kind, ScxExitKind::sysrq) << stopped->loader_exit->line;
  EXPECT_EQ(settled(10s).state, "disabled");
}

TEST_F(RealSchedExt, AKilledLoaderLeavesNothingAttached) {
  REQUIRE_EXAMPLES();
  auto s = Scheduler::start(spec(SCXKIT_EXAMPLE_VTIME));
  ASSERT_TRUE(s) << problem_of(s.error()).message << "\n" << problem_of(s.error()).log_tail;
  ASSERT_EQ(kill(s->pid(), SIGKILL), 0);
  auto trouble = s->watch(30s);
  ASSERT_TRUE(trouble) << "neither the death nor the detach was seen within 30 s";
  // Closing the struct_ops link with the process is what detaches it.
  const SchedExtStatus after = settled(10s);
  EXPECT_EQ(after.state, "disabled");
  EXPECT_EQ(after.ops, "");
  ASSERT_TRUE(trouble->kernel_exit) << trouble->message;
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::unreg) << trouble->kernel_exit->line;
  EXPECT_FALSE(trouble->loader_exit) << "a SIGKILLed loader prints nothing";
  // The link closes while the process exits: the detach may show first.
  ProcessExit exit = trouble->exit;
  if (!trouble->process_died) {
    auto stopped = s->stop();
    ASSERT_TRUE(stopped) << stopped.error().message;
    exit = stopped->exit;
  }
  EXPECT_TRUE(exit.signaled && exit.code == SIGKILL) << exit.describe();
}

// Any sched_ext scheduler binary: SCXKIT_REAL_SCHEDULER=/path/to/scx_simple.
TEST_F(RealSchedExt, StartsAndStopsTheSchedulerNamedInTheEnvironment) {
  const char* bin = std::getenv("SCXKIT_REAL_SCHEDULER");
  if (bin == nullptr) GTEST_SKIP() << "set SCXKIT_REAL_SCHEDULER to a sched_ext scheduler binary";
  auto s = Scheduler::start(spec(bin));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  EXPECT_FALSE(s->name().empty());
  EXPECT_FALSE(s->watch(2s));
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_TRUE(stopped->kernel_detached);
}

}  // namespace
}  // namespace scxkit
