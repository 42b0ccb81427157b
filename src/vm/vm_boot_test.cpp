// The VM tier: these tests boot Debian's sched_ext kernel under QEMU with the
// real scxkit program (SCXKIT_BIN) as user and guest agent. They skip, with
// the reason, where QEMU or the kernel cannot be had.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/kernel_files.hpp"
#include "common/process.hpp"
#include "vm/kernel_image.hpp"
#include "vm/process.hpp"
#include "vm/vm_test_support.hpp"

namespace scxkit::vm::internal {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// QEMU processes whose parent is `parent`. Processes come and go while
// /proc is walked: one that is gone is skipped.
std::vector<pid_t> qemu_children(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (!std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const pid_t pid = std::stoi(name);
    const auto stat = scxkit::internal::read_proc_stat(pid);
    if (!stat || stat->ppid != parent) continue;
    const auto comm = scxkit::internal::read_kernel_file((e.path() / "comm").string());
    if (comm && comm->starts_with("qemu-system")) found.push_back(pid);
  }
  return found;
}

bool gone_within(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (!scxkit::internal::process_running(pid)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class VmBoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { skip_ = test_support::vm_tier_skip_reason(); }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }

  static ToolRun scxkit(std::vector<std::string> args) {
    return test_support::run_scxkit(std::move(args));
  }

  // Starts `scxkit vm run -- sleep 1000` and waits until its QEMU runs.
  static std::pair<std::optional<Subprocess>, pid_t> start_sleeping_guest() {
    static Fd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    auto s = Subprocess::spawn({{SCXKIT_BIN, "vm", "run", "-q", "--", "sleep", "1000"},
                                {{0, null_fd.get()}, {1, null_fd.get()}, {2, null_fd.get()}}});
    EXPECT_TRUE(s) << s.error().message;
    if (!s) return {std::nullopt, -1};
    const auto deadline = Clock::now() + 60s;
    std::vector<pid_t> q;
    while ((q = qemu_children(s->pid())).empty() && Clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    EXPECT_EQ(q.size(), 1u) << "scxkit started no QEMU";
    return {std::move(*s), q.empty() ? -1 : q[0]};
  }

  static std::string skip_;
};
std::string VmBoot::skip_;

TEST_F(VmBoot, DoctorInsideTheGuestSeesSchedExt) {
  const auto r = scxkit({"vm", "run", "-q", "--", "scxkit", "doctor"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("sched_ext +yes"))) << r.out;
}

TEST_F(VmBoot, OutputStreamsStayApartFilesComeOutAndTheExitCodeComesBack) {
  char tmpl[] = "/tmp/scxkit-vm-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir = tmpl;
  const auto r = scxkit(
      {"vm", "run", "-q", "--out", (dir / "out").string(), "--kernel-log",
       (dir / "kernel.log").string(), "--", "sh", "-c",
       "echo to-out; echo to-err >&2; mkdir -p $SCXKIT_OUT/sub; echo kept > $SCXKIT_OUT/sub/file; "
       "echo scxkit-marker > /dev/kmsg; exit 7"});
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "to-out\n");
  EXPECT_EQ(r.err, "to-err\n");
  EXPECT_EQ(slurp(dir / "out/sub/file"), "kept\n");
  const std::string klog = slurp(dir / "kernel.log");
  EXPECT_NE(klog.find("Linux version"), std::string::npos) << klog.substr(0, 2000);
  EXPECT_NE(klog.find("scxkit-marker"), std::string::npos)
      << "the guest's /dev/kmsg reaches the kernel log";
  EXPECT_EQ(klog.find("to-out"), std::string::npos);
  fs::remove_all(dir);
}

TEST_F(VmBoot, TopologyAndNumaReachTheGuest) {
  const auto r =
      scxkit({"vm", "run", "-q", "--topology", "2,1,1", "--numa", "2", "--memory", "1024", "--",
              "sh", "-c", "cat /sys/devices/system/node/online; grep -c ^processor /proc/cpuinfo"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0-1\n2\n");
}

TEST_F(VmBoot, AGuestKernelPanicIsReportedAsAPanicWithItsLines) {
  const auto r =
      scxkit({"vm", "run", "-q", "--", "sh", "-c", "echo c > /proc/sysrq-trigger; sleep 100"});
  EXPECT_EQ(r.status, 123) << r.err;
  EXPECT_NE(r.err.find("Kernel panic - not syncing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("scxkit: the guest kernel panicked"), std::string::npos) << r.err;
}

TEST_F(VmBoot, ARunPastItsTimeoutIsKilled) {
  const auto start = Clock::now();
  const auto r = scxkit({"vm", "run", "-q", "--timeout", "60", "--", "sleep", "1000"});
  EXPECT_EQ(r.status, 124) << r.err;
  EXPECT_NE(r.err.find("timeout"), std::string::npos) << r.err;
  EXPECT_LT(Clock::now() - start, 100s);
}

TEST_F(VmBoot, AGuestThatDoesNotBootInTimeIsReported) {
  const auto r = scxkit({"vm", "run", "-q", "--boot-timeout", "1", "--", "true"});
  EXPECT_EQ(r.status, 125) << r.err;
  EXPECT_NE(r.err.find("scxkit: the guest did not boot within 1 s"), std::string::npos) << r.err;
}

TEST_F(VmBoot, SigkillOfScxkitTakesQemuDown) {
  auto [s, qemu] = start_sleeping_guest();
  ASSERT_TRUE(s && qemu > 0);
  kill(s->pid(), SIGKILL);
  EXPECT_EQ(s->wait_until(Clock::now() + 10s), 128 + SIGKILL);
  EXPECT_TRUE(gone_within(qemu, 10s)) << "qemu " << qemu << " outlived scxkit";
}

TEST_F(VmBoot, CtrlCCancelsTheRunAndTakesQemuDown) {
  auto [s, qemu] = start_sleeping_guest();
  ASSERT_TRUE(s && qemu > 0);
  kill(s->pid(), SIGINT);
  EXPECT_EQ(s->wait_until(Clock::now() + 20s), 130);
  EXPECT_TRUE(gone_within(qemu, 1s)) << "qemu " << qemu << " outlived scxkit";
}

TEST_F(VmBoot, TheCachedKernelHasSchedExtBtfAndABootablePvhVmlinux) {
  const auto btf = scxkit({"vm", "kernel", "-q", "--btf"});
  ASSERT_EQ(btf.status, 0) << btf.err;
  const std::string btf_path = btf.out.substr(0, btf.out.find('\n'));
  if (find_executable("bpftool").empty())
    GTEST_SKIP() << "bpftool is not installed (scripts/setup.sh)";
  const auto header = run_tool(
      {.argv = {"bpftool", "btf", "dump", "file", btf_path, "format", "c"}}, Clock::now() + 120s);
  ASSERT_TRUE(header) << header.error().message;
  ASSERT_EQ(header->status, 0) << header->err;
  EXPECT_NE(header->out.find("struct sched_ext_ops {"), std::string::npos);
  const std::string vmlinux = (fs::path(btf_path).parent_path() / "vmlinux").string();
  auto elf = read_file(vmlinux);
  ASSERT_TRUE(elf) << elf.error().message;
  EXPECT_TRUE(has_pvh_entry(*elf));
  auto self = read_file(fs::read_symlink("/proc/self/exe").string());
  ASSERT_TRUE(self);
  EXPECT_FALSE(has_pvh_entry(*self));
}

// The harness's `scxkit sched start`, unchanged, against the real kernel: fifo
// attaches and stops cleanly; the verifier's refusal of `reject` is exit 4
// with the verifier's words on the one error line.
TEST_F(VmBoot, SchedStartAttachesFifoStopsItCleanlyAndReportsAVerifierRejection) {
#if !defined(SCXKIT_EXAMPLE_FIFO) || !defined(SCXKIT_EXAMPLE_REJECT)
  GTEST_SKIP() << "the examples were not built (SCXKIT_BUILD_EXAMPLES=OFF)";
#else
  const auto r = scxkit(
      {"vm", "run", "-q", "--add", SCXKIT_EXAMPLE_FIFO, "--add", SCXKIT_EXAMPLE_REJECT, "--", "sh",
       "-c",
       fmt::format("scxkit sched start --hold 1 --log /tmp/fifo.log {}; code=$?; "
                   "cat /tmp/fifo.log; echo state: $(cat /sys/kernel/sched_ext/state); "
                   "scxkit sched start --log /tmp/reject.log {}; echo reject exit $?; exit $code",
                   SCXKIT_EXAMPLE_FIFO, SCXKIT_EXAMPLE_REJECT)});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("attached: 'fifo'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the kernel detached it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exit: UNREG (unregistered from user space) (from the kernel log)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("scx_fifo: exit kind 64 (UNREG) code 0, detached on request; reason: "
                       "unregistered from user space"),
            std::string::npos)
      << "the loader's exit record " << r.out;
  EXPECT_NE(r.out.find("\nstate: disabled\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reject exit 4\n"), std::string::npos) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(
      r.err, std::regex("\nscxkit: [^\n]*The verifier refused its BPF program: invalid access "
                        "to map value, value_size=8 off=24 size=8[^\n]*\n$")))
      << r.err;
#endif
}

// The harness's lifecycle tests (src/harness/sched_ext_real_test.cpp) run
// inside one guest, one after another, against the real /sys/kernel/sched_ext
// and the example schedulers: attach and graceful stop, a verifier rejection,
// a stall, scx_bpf_error(), sysrq-S, a killed loader; and vtime sharing a
// CPU by weight.
TEST_F(VmBoot, TheHarnessLifecycleHoldsAgainstTheRealKernel) {
#ifndef SCXKIT_HARNESS_TEST
  GTEST_SKIP() << "the example schedulers were not built (SCXKIT_BUILD_EXAMPLES=OFF)";
#else
  const auto start = Clock::now();
  const auto r =
      scxkit({"vm", "run", "-q", "--add", SCXKIT_HARNESS_TEST, "--add", SCXKIT_EXAMPLE_VTIME,
              "--add", SCXKIT_EXAMPLE_STALL, "--add", SCXKIT_EXAMPLE_ERROR, "--add",
              SCXKIT_EXAMPLE_REJECT, "--", SCXKIT_HARNESS_TEST, "--gtest_filter=RealSchedExt.*"});
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  for (const char* name : {"AttachesWithItsRealNameAndStopsGracefully",
                           "AVerifierRejectionIsADeathDuringTheLivenessGateWithTheVerifierLines",
                           "AStalledTaskGetsTheSchedulerKickedOutWithErrorStall",
                           "ScxBpfErrorGetsTheSchedulerKickedOutWithErrorBpfAndItsMessage",
                           "SysrqSGetsTheSchedulerKickedOutWithSysrq",
                           "AKilledLoaderLeavesNothingAttached", "VtimeSharesACpuByWeight"}) {
    EXPECT_NE(r.out.find(fmt::format("[       OK ] RealSchedExt.{}", name)), std::string::npos)
        << name << " did not pass inside the guest:\n"
        << r.out << r.err;
  }
  std::printf("the lifecycle suite in the guest took %lld s, boot included\n",
              static_cast<long long>(took.count()));
#endif
}

// BPF stream printing and the kernel arena backend on the guest's kernel, in
// one boot: the host's own tests of them. The host kernel cannot allocate
// stream messages (-ENOMEM), so here the printing tests must pass, not skip.
// What the guest kernel truly lacks (try_alloc, NUMA arenas) may skip, saying
// so. Each kernel arena loads its BPF programs, ~1 s under TCG, so the guest
// runs the differential test (which covers every page call) and the page
// semantics the kernel's fault and placement code decide; the rest stays on
// the host (the VM tier's time is budgeted).
TEST_F(VmBoot, BpfStreamAndKernelArenaTestsPassOnTheGuestKernel) {
  const std::string script = fmt::format(
      "{} --gtest_filter='ProgStream*:Printing*:Interop*' && "
      "SCXKIT_DIFF_OPS=3000 {} --gtest_filter='Differential.*:KernelArena.TryAlloc*:"
      "KernelArena.Reports*:KernelArenaNuma.*:Backends/PageSemantics.Placement*/kernel:"
      "Backends/PageSemantics.UserViewTouch*/kernel:Backends/PageSemantics.SegvOnFault*/kernel:"
      "Backends/PageSemantics.FreedPages*/kernel' && "
      "sh {} streams scxkit {}",
      SCXKIT_BPF_TEST, SCXKIT_ARENA_TEST, SCXKIT_BPF_CLI_TEST, SCXKIT_BPF_ARENA_HOLDER);
  const auto start = Clock::now();
  const auto r = scxkit({"vm", "run", "-q", "--add", SCXKIT_BPF_TEST, "--add", SCXKIT_ARENA_TEST,
                         "--add", SCXKIT_ARENA_PEER, "--add", SCXKIT_BPF_CLI_TEST, "--add",
                         SCXKIT_BPF_ARENA_HOLDER, "--", "sh", "-c", script});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  for (const char* must :
       {"[       OK ] PrintingTest.WhatAProgramPrintsToStderrIsReadOnce",
        "[       OK ] PrintingTest.StdoutAndStderrAreSeparate",
        "[       OK ] Differential.KernelAndEmulationGiveTheSameTraces",
        "[       OK ] InteropFixture.CppAndBpfAllocatingAtTheSameTimeNeverGetTheSamePage"}) {
    EXPECT_NE(r.out.find(must), std::string::npos) << must << " in\n" << r.out;
  }
  EXPECT_TRUE(r.out.size() >= 5 && r.out.substr(r.out.size() - 5) == "PASS\n")
      << "cli prog streams in the guest:\n"
      << r.out;
  // What skipped in the guest, and why, for whoever reads the log.
  std::istringstream lines(r.out);
  for (std::string line, last; std::getline(lines, line); last = line) {
    // (Not "[  SKIPPED ]" itself: ctest would take this test for skipped.)
    constexpr std::string_view kSkipped = "[  SKIPPED ] ";
    if (line.rfind(kSkipped, 0) == 0 && line.find(" ms)") != std::string::npos) {
      std::printf("skipped in the guest: %s (%s)\n", line.c_str() + kSkipped.size(), last.c_str());
    }
  }
  std::printf("guest run: %.1f s\n", std::chrono::duration<double>(Clock::now() - start).count());
}

// `scxkit run --vm`: the scenario runner inside the guest, against a real
// scheduler named like a user names it, reports brought out to the host.
TEST_F(VmBoot, RunInTheVmPassesOnTheVtimeExampleAndBringsTheReportOut) {
#ifndef SCXKIT_EXAMPLE_VTIME
  GTEST_SKIP() << "the example schedulers were not built (SCXKIT_BUILD_EXAMPLES=OFF)";
#else
  char tmpl[] = "/tmp/scxkit-run-vm-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir = tmpl;
  const auto start = Clock::now();
  const auto r = scxkit({"run", "--vm", "-q", "--scheduler", "vtime", "-s", "steady", "-s",
                         "wake-pingpong", "--scale", "0.5", "--json", (dir / "r.json").string(),
                         "--scheduler-log", (dir / "vtime.log").string()});
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("scheduler: vtime"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 of 2 scenarios passed"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("scheduler +ok +stayed attached"))) << r.out;
  const std::string json = slurp(dir / "r.json");
  EXPECT_NE(json.find("\"scheduler\": \"vtime\""), std::string::npos) << json.substr(0, 500);
  EXPECT_NE(json.find("\"kernel\": \"7."), std::string::npos) << "ran on the VM's kernel";
  EXPECT_NE(slurp(dir / "vtime.log").find("scx_vtime"), std::string::npos)
      << "the scheduler's log comes out too";
  std::printf("run --vm with vtime took %lld s, boot included\n",
              static_cast<long long>(took.count()));
  fs::remove_all(dir);
#endif
}

TEST_F(VmBoot, RunInTheVmFailsOnTheStallFixtureQuotingTheKernelsStallLines) {
#ifndef SCXKIT_EXAMPLE_STALL
  GTEST_SKIP() << "the example schedulers were not built (SCXKIT_BUILD_EXAMPLES=OFF)";
#else
  const auto start = Clock::now();
  // steady lasts past the fixture's 2 s watchdog timeout; cpuset-split must not run after it.
  const auto r = scxkit({"run", "--vm", "-q", "--scheduler", SCXKIT_EXAMPLE_STALL, "-s", "steady",
                         "-s", "cpuset-split", "--scheduler-log", "/dev/null"});
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("kernel +FAIL"))) << r.out;
  EXPECT_NE(r.out.find("sched_ext: BPF scheduler \"stall\" disabled (runnable task stall)"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("stall_victim\\[[0-9]+\\] failed to run for")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("scheduler +FAIL .*ERROR_STALL"))) << r.out;
  EXPECT_NE(r.out.find("not run (the scheduler was gone"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("scxkit: 2 of 2 scenarios failed: steady, cpuset-split"), std::string::npos)
      << r.err;
  std::printf("run --vm with stall took %lld s, boot included\n",
              static_cast<long long>(took.count()));
#endif
}

TEST_F(VmBoot, AnUnknownKernelVersionListsWhatIsAvailable) {
  const auto r = scxkit({"vm", "kernel", "-q", "--kernel", "6.0.99"});
  EXPECT_EQ(r.status, 125);
  if (r.err.find("apt-get update") != std::string::npos)
    GTEST_SKIP() << "the mirror is unreachable: " << r.err;
  EXPECT_NE(r.err.find("no amd64 kernel matching '6.0.99'"), std::string::npos) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("available: 7\\.[0-9]+\\.[0-9]+"))) << r.err;
}

}  // namespace
}  // namespace scxkit::vm::internal
