#include "scxkit/scheduler.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "scxkit/cgroup.hpp"

namespace scxkit {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t ns_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every process whose parent is this test process: children, and grandchildren
// reparented to us (the harness is a child subreaper). Zombies included.
std::vector<std::string> leftover_children() {
  std::vector<std::string> found;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    const std::string stat = slurp(fs::path("/proc") / e->d_name / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %d", &state, &ppid) != 2) continue;
    if (ppid == getpid()) found.push_back(fmt::format("pid {} state {}", e->d_name, state));
  }
  closedir(d);
  return found;
}

bool alive(pid_t pid) {
  const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
  const auto close = stat.rfind(')');
  return close != std::string::npos && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

template <class F>
bool eventually(F&& condition, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Reaps `pid` if it is (or becomes, as an orphan) a zombie child of this process.
void reap_if_ours(pid_t pid) {
  eventually(
      [pid] {
        if (waitpid(pid, nullptr, WNOHANG) == pid) return true;
        const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
        const auto close = stat.rfind(')');
        int ppid = 0;
        return close == std::string::npos ||
               std::sscanf(stat.c_str() + close + 4, "%d", &ppid) != 1 || ppid != getpid();
      },
      2s);
}

// The run cgroups that process `owner` made under "scxkit", in any hierarchy.
std::vector<std::string> runs_of(pid_t owner) {
  std::vector<std::string> found;
  const auto layout = detect_cgroup_layout();
  if (!layout) return found;
  for (const auto& m : layout->mounts) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(m.mount_point) / "scxkit", ec)) {
      if (e.path().filename().string().rfind(fmt::format("run-{}-", owner), 0) == 0) {
        found.push_back(e.path());
      }
    }
  }
  return found;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scxkit-sched-XXXXXX";
    dir_ = mkdtemp(tmpl);
    root_ = dir_ / "sched_ext";
    fs::create_directory(root_);
    std::ofstream(root_ / "state") << "disabled\n";
  }
  void TearDown() override {
    for (pid_t cli : clis_) {  // a failed test's CLI, still running
      if (waitpid(cli, nullptr, WNOHANG) == 0) {
        kill(cli, SIGKILL);
        waitpid(cli, nullptr, 0);
      }
    }
    EXPECT_EQ(leftover_children(), std::vector<std::string>{}) << "a process was left behind";
    fs::remove_all(dir_);
  }

  SchedulerSpec spec(std::vector<std::string> args) {
    SchedulerSpec s;
    s.binary = SCXKIT_FAKE_SCHEDULER;
    s.args = std::move(args);
    // The fixture takes MODE SYSFS_ROOT ARGS...
    s.args.insert(s.args.begin() + (s.args.empty() ? 0 : 1), root_.string());
    s.log_path = (dir_ / "sched.log").string();
    s.sysfs_root = root_.string();
    s.kernel_log = "";
    s.liveness_window = 300ms;
    s.attach_timeout = 1500ms;
    s.stop_grace = 500ms;
    s.kill_timeout = 1000ms;
    return s;
  }
  // `scxkit sched start` as a user runs it, on the fake scheduler in `mode`.
  pid_t start_cli(std::vector<std::string> mode_args, std::vector<std::string> options = {}) {
    std::vector<std::string> args = {SCXKIT_CLI,      "sched",       "start",
                                     "--liveness-ms", "100",         "--grace-ms",
                                     "500",           "--log",       (dir_ / "sched.log").string(),
                                     "--sysfs-root",  root_.string()};
    args.insert(args.end(), options.begin(), options.end());
    for (auto a :
         {std::string(SCXKIT_FAKE_SCHEDULER), std::string("--"), mode_args[0], root_.string()}) {
      args.push_back(a);
    }
    args.insert(args.end(), mode_args.begin() + 1, mode_args.end());
    return spawn_cli(std::move(args));
  }
  // The CLI's exit status, or -1 if it did not exit within `limit` (it is killed then).
  int cli_status(std::vector<std::string> mode_args, std::vector<std::string> options,
                 std::chrono::milliseconds limit) {
    const pid_t cli = start_cli(std::move(mode_args), std::move(options));
    int status = -1;
    if (!eventually([&] { return waitpid(cli, &status, WNOHANG) == cli; }, limit)) return -1;
    return status;
  }
  pid_t spawn_cli(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out = (dir_ / "cli.out").string();
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(126);
      execv(argv[0], argv.data());
      _exit(127);
    }
    clis_.push_back(pid);
    return pid;
  }
  // Attached, and the CLI past its liveness window, holding it.
  bool attached_as(const std::string& name) {
    return eventually(
        [&] {
          return slurp(root_ / "root" / "ops") == name + "\n" &&
                 slurp(dir_ / "cli.out").find("contained in:") != std::string::npos;
        },
        10s);
  }
  pid_t scheduler_pid() { return std::atoi(slurp(root_.string() + ".pid").c_str()); }
  std::vector<pid_t> helper_pids() {
    pid_t a = 0, b = 0;
    std::istringstream(slurp(root_.string() + ".helper_pids")) >> a >> b;
    return {a, b};
  }
  // The kernel's part when a scheduler process dies: it detaches it.
  void kernel_detaches() {
    std::ofstream(root_ / "root" / "ops") << "";
    std::ofstream(root_ / "state") << "disabled\n";
  }

  std::int64_t stamp(const char* what) {
    return std::stoll(slurp(root_.string() + "." + what + "_ns"));
  }

  fs::path dir_, root_;
  std::vector<pid_t> clis_;
};

TEST_F(SchedulerTest, AttachesAfterADelayAndIsSeenWithin50ms) {
  auto s = Scheduler::start(spec({"attach", "400", "fake_rr"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  EXPECT_EQ(s->name(), "fake_rr");
  EXPECT_GE(s->attach_time(), 400ms);
  const std::int64_t latency = ns_of(s->attached_at()) - stamp("attach");
  EXPECT_GE(latency, 0);
  EXPECT_LT(latency, 50'000'000) << "attach seen " << latency / 1000 << " us after the write";
  const pid_t pid = s->pid();
  EXPECT_GT(pid, 0);
  EXPECT_EQ(s->published_pid()->load(), pid);
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_FALSE(stopped->needed_kill);
  EXPECT_TRUE(stopped->kernel_detached);
  EXPECT_TRUE(stopped->exit.known);
  EXPECT_EQ(stopped->exit.code, 0);
  EXPECT_EQ(s->pid(), 0);
  EXPECT_FALSE(fs::exists(fmt::format("/proc/{}", pid)));
  EXPECT_EQ(slurp(root_ / "state"), "disabled\n");
}

TEST_F(SchedulerTest, ACrashAtStartIsItsOwnErrorWithTheLogTail) {
  auto s = Scheduler::start(spec({"crash"}));
  ASSERT_FALSE(s);
  const auto* died = std::get_if<DiedDuringLiveness>(&s.error());
  ASSERT_NE(died, nullptr) << problem_of(s.error()).message;
  EXPECT_TRUE(died->exit.known);
  EXPECT_TRUE(died->exit.signaled);
  EXPECT_EQ(died->exit.code, SIGABRT);
  EXPECT_FALSE(died->had_attached);
  EXPECT_NE(died->message.find("SIGABRT"), std::string::npos) << died->message;
  EXPECT_NE(died->message.find("verifier"), std::string::npos);
  EXPECT_NE(died->log_tail.find("verifier rejected the program"), std::string::npos);
}

TEST_F(SchedulerTest, AliveButNeverAttachedTimesOutAndIsKilled) {
  auto sp = spec({"never-attach"});
  sp.attach_timeout = 600ms;
  const auto t0 = Clock::now();
  auto s = Scheduler::start(sp);
  ASSERT_FALSE(s);
  const auto* timeout = std::get_if<AttachTimeout>(&s.error());
  ASSERT_NE(timeout, nullptr) << problem_of(s.error()).message;
  EXPECT_GE(Clock::now() - t0, 600ms);
  EXPECT_LT(Clock::now() - t0, 1500ms);
  EXPECT_TRUE(timeout->last_seen.present);
  EXPECT_EQ(timeout->last_seen.state, "disabled");
  EXPECT_NE(timeout->message.find("raise the attach timeout"), std::string::npos);
}

TEST_F(SchedulerTest, AMissingSysfsTreeIsSysfsAbsentAndTheSchedulerIsKilled) {
  auto sp = spec({"never-attach"});
  sp.sysfs_root = (dir_ / "no-such-dir").string();
  sp.args[1] = sp.sysfs_root;
  const auto t0 = Clock::now();
  auto s = Scheduler::start(sp);
  ASSERT_FALSE(s);
  const auto* absent = std::get_if<SysfsAbsent>(&s.error());
  ASSERT_NE(absent, nullptr) << problem_of(s.error()).message;
  EXPECT_LT(Clock::now() - t0, 1000ms) << "decided at the end of the liveness window";
  EXPECT_NE(absent->message.find("CONFIG_SCHED_CLASS_EXT"), std::string::npos);
}

TEST_F(SchedulerTest, TheKernelDetachingALiveSchedulerIsReportedWithin100ms) {
  auto s = Scheduler::start(spec({"attach-then-detach", "50", "600", "fake_stall"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  auto trouble = s->watch(5s);
  const std::int64_t seen = monotonic_ns();
  ASSERT_TRUE(trouble);
  EXPECT_FALSE(trouble->process_died);
  EXPECT_LT(seen - stamp("detach"), 100'000'000);
  ASSERT_TRUE(trouble->kernel_exit);
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::error_stall);
  EXPECT_NE(trouble->message.find("runnable task stall"), std::string::npos) << trouble->message;
  auto stopped = s->stop();
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->exit.code, 0);
}

TEST_F(SchedulerTest, ASchedulerDyingWhileAttachedIsReportedWithin100ms) {
  auto s = Scheduler::start(spec({"attach-then-crash", "50", "500", "fake_crash"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  auto trouble = s->watch(5s);
  const std::int64_t seen = monotonic_ns();
  ASSERT_TRUE(trouble);
  EXPECT_TRUE(trouble->process_died);
  EXPECT_EQ(trouble->exit.code, SIGSEGV);
  EXPECT_LT(seen - stamp("crash"), 100'000'000);
  EXPECT_EQ(s->pid(), 0);
}

TEST_F(SchedulerTest, WatchReturnsNothingWhileAllIsWell) {
  auto s = Scheduler::start(spec({"attach", "0", "steady"}));
  ASSERT_TRUE(s);
  const auto t0 = Clock::now();
  EXPECT_FALSE(s->watch(200ms));
  EXPECT_GE(Clock::now() - t0, 200ms);
  EXPECT_TRUE(s->stop());
}

TEST_F(SchedulerTest, ASchedulerIgnoringSigtermIsKilledAfterTheGracePeriod) {
  auto s = Scheduler::start(spec({"ignore-term", "stubborn"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_TRUE(stopped->needed_kill);
  EXPECT_TRUE(stopped->exit.signaled);
  EXPECT_EQ(stopped->exit.code, SIGKILL);
  EXPECT_GE(stopped->took, 500ms);
}

TEST_F(SchedulerTest, AWedgedSchedulerIsReportedAndNeverWaitedOnForever) {
  auto sp = spec({"ignore-term", "wedged"});
  sp.kill_signal = SIGCONT;  // plays a process the kill signal cannot end
  sp.kill_timeout = 300ms;
  auto s = Scheduler::start(sp);
  ASSERT_TRUE(s);
  const auto t0 = Clock::now();
  auto stopped = s->stop();
  ASSERT_FALSE(stopped);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(stopped.error().pid, s->pid());
  EXPECT_NE(stopped.error().message.find("/stack"), std::string::npos);
  // The destructor still ends it for real (SIGKILL) and reaps it: TearDown checks.
}

TEST_F(SchedulerTest, HelpersForkedByASchedulerThatExitsAreReapedToo) {
  auto s = Scheduler::start(spec({"fork-helper-exit"}));
  ASSERT_FALSE(s);
  ASSERT_NE(std::get_if<DiedDuringLiveness>(&s.error()), nullptr);
  const std::string helper = slurp(root_.string() + ".helper_pid");
  ASSERT_FALSE(helper.empty());
  EXPECT_FALSE(fs::exists("/proc/" + helper)) << "helper " << helper << " survived";
}

TEST_F(SchedulerTest, HelpersThatLeaveTheProcessGroupAreKilledWithTheScheduler) {
  auto s = Scheduler::start(spec({"setsid-helpers", "escapist"}));
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  if (s->containment().rfind("cgroup ", 0) != 0) {
    GTEST_SKIP() << "no cgroup here, so setsid() helpers escape: " << s->containment();
  }
  pid_t helpers[2] = {0, 0};
  std::istringstream(slurp(root_.string() + ".helper_pids")) >> helpers[0] >> helpers[1];
  ASSERT_GT(helpers[0], 0);
  ASSERT_GT(helpers[1], 0);
  EXPECT_TRUE(alive(helpers[0]) && alive(helpers[1]));
  auto stopped = s->stop();
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_FALSE(stopped->needed_kill);
  EXPECT_EQ(stopped->exit.code, 0);
  for (pid_t h : helpers) {
    EXPECT_FALSE(alive(h)) << "helper " << h << " survived the stop";
    if (alive(h)) kill(h, SIGKILL);  // do not leak it into later tests
  }
  EXPECT_EQ(runs_of(getpid()), std::vector<std::string>{}) << "the run's cgroup was left behind";
}

TEST_F(SchedulerTest, WithoutACgroupTheLimitOfProcessGroupContainmentIsReported) {
  auto sp = spec({"attach", "0", "grouped"});
  sp.cgroup_parent = "";
  auto s = Scheduler::start(sp);
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  EXPECT_NE(s->containment().find("process group only"), std::string::npos) << s->containment();
  EXPECT_NE(s->containment().find("setsid"), std::string::npos) << s->containment();
  EXPECT_TRUE(s->stop());
}

TEST_F(SchedulerTest, SigkillOfTheCliTakesTheSchedulerAlongAndTheNextStartClearsTheRest) {
  const pid_t cli = start_cli({"setsid-helpers", "orphaned"});
  ASSERT_TRUE(attached_as("orphaned")) << slurp(dir_ / "cli.out");
  const pid_t sched = scheduler_pid();
  const auto helpers = helper_pids();
  ASSERT_GT(sched, 0);
  ASSERT_EQ(kill(cli, SIGKILL), 0);
  ASSERT_EQ(waitpid(cli, nullptr, 0), cli);
  EXPECT_TRUE(eventually([&] { return !alive(sched); }, 3s))
      << "the scheduler outlived a SIGKILLed scxkit";
  if (alive(sched)) kill(sched, SIGKILL);
  kernel_detaches();

  // Its helpers are still in the dead run's cgroup: the next start clears them.
  auto next = Scheduler::start(spec({"attach", "0", "next"}));
  ASSERT_TRUE(next) << problem_of(next.error()).message;
  for (pid_t h : helpers) {
    EXPECT_TRUE(eventually([&] { return !alive(h); }, 3s)) << "helper " << h << " outlived it";
    if (alive(h)) kill(h, SIGKILL);
    reap_if_ours(h);
  }
  reap_if_ours(sched);
  EXPECT_EQ(runs_of(cli), std::vector<std::string>{}) << "the dead run's cgroup stayed";
  EXPECT_TRUE(next->stop());
}

TEST_F(SchedulerTest, HangupOfTheCliStopsTheSchedulerAndItsHelpersCleanly) {
  const pid_t cli = start_cli({"setsid-helpers", "hungup"});
  ASSERT_TRUE(attached_as("hungup")) << slurp(dir_ / "cli.out");
  const pid_t sched = scheduler_pid();
  const auto helpers = helper_pids();
  ASSERT_EQ(kill(cli, SIGHUP), 0);
  int status = -1;
  EXPECT_TRUE(eventually([&] { return waitpid(cli, &status, WNOHANG) == cli; }, 5s));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n"
                                                             << slurp(dir_ / "cli.out");
  for (pid_t p : {sched, helpers[0], helpers[1]}) {
    EXPECT_TRUE(eventually([&] { return !alive(p); }, 3s)) << p << " outlived scxkit";
    if (alive(p)) kill(p, SIGKILL);
    reap_if_ours(p);
  }
  if (waitpid(cli, nullptr, WNOHANG) == 0) kill(cli, SIGKILL), waitpid(cli, nullptr, 0);
  EXPECT_EQ(runs_of(cli), std::vector<std::string>{});
  EXPECT_NE(slurp(dir_ / "cli.out").find("stopped in"), std::string::npos);
}

TEST_F(SchedulerTest, SigintOrSigtermDuringStartStopsTheCliPromptly) {
  for (int sig : {SIGINT, SIGTERM}) {
    std::filesystem::remove(root_.string() + ".pid");
    const pid_t cli =
        start_cli({"never-attach"}, std::vector<std::string>{"--attach-timeout-ms", "60000"});
    ASSERT_TRUE(eventually([&] { return scheduler_pid() > 0; }, 10s));
    const pid_t sched = scheduler_pid();
    std::this_thread::sleep_for(300ms);  // past the liveness window: waiting for the attach
    const auto t0 = Clock::now();
    ASSERT_EQ(kill(cli, sig), 0);
    int status = -1;
    EXPECT_TRUE(eventually([&] { return waitpid(cli, &status, WNOHANG) == cli; }, 3s))
        << "signal " << sig << " was ignored until the attach timeout";
    EXPECT_LT(Clock::now() - t0, 2s);
    if (waitpid(cli, nullptr, WNOHANG) == 0) kill(cli, SIGKILL), waitpid(cli, nullptr, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 10) << "status " << status;
    EXPECT_TRUE(eventually([&] { return !alive(sched); }, 2s)) << "the scheduler outlived it";
    if (alive(sched)) kill(sched, SIGKILL);
    reap_if_ours(sched);
    EXPECT_NE(slurp(dir_ / "cli.out").find("scxkit: a stop was requested"), std::string::npos)
        << slurp(dir_ / "cli.out");
  }
}

TEST_F(SchedulerTest, TheStopFdInterruptsStartAndWatchAtOnce) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  auto sp = spec({"never-attach"});
  sp.attach_timeout = 60s;
  sp.stop_fd = p[0];
  std::thread requester([&] {
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(write(p[1], "x", 1), 1);
  });
  const auto t0 = Clock::now();
  auto s = Scheduler::start(sp);
  const auto took = Clock::now() - t0;
  requester.join();
  ASSERT_FALSE(s);
  EXPECT_NE(std::get_if<Interrupted>(&s.error()), nullptr) << problem_of(s.error()).message;
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_FALSE(alive(scheduler_pid()));

  // Drained, a later request ends watch() at once.
  char byte = 0;
  ASSERT_EQ(read(p[0], &byte, 1), 1);
  sp = spec({"attach", "0", "watched"});
  sp.stop_fd = p[0];
  auto ok = Scheduler::start(sp);
  ASSERT_TRUE(ok) << problem_of(ok.error()).message;
  ASSERT_EQ(write(p[1], "x", 1), 1);
  const auto w0 = Clock::now();
  EXPECT_FALSE(ok->watch(10s));
  EXPECT_LT(Clock::now() - w0, 500ms);
  EXPECT_TRUE(ok->stop());
  close(p[0]);
  close(p[1]);
}

TEST_F(SchedulerTest, WorksWhenThisProcessIgnoresSigchld) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ignore, &old);
  auto crashed = Scheduler::start(spec({"crash"}));
  auto ok = Scheduler::start(spec({"attach", "0", "nochld"}));
  ASSERT_TRUE(ok) << problem_of(ok.error()).message;
  auto stopped = ok->stop();
  sigaction(SIGCHLD, &old, nullptr);
  ASSERT_FALSE(crashed);
  const auto* died = std::get_if<DiedDuringLiveness>(&crashed.error());
  ASSERT_NE(died, nullptr) << problem_of(crashed.error()).message;
  EXPECT_FALSE(died->exit.known) << "the kernel reaped it; the gate still saw it die";
  EXPECT_LT(died->alive_for, 300ms);
  ASSERT_TRUE(stopped);
  EXPECT_FALSE(stopped->exit.known);
}

TEST_F(SchedulerTest, TheProcFallbackGivesTheSameOutcomes) {
  auto sp = spec({"crash"});
  sp.use_pidfd = false;
  auto crashed = Scheduler::start(sp);
  ASSERT_FALSE(crashed);
  EXPECT_NE(std::get_if<DiedDuringLiveness>(&crashed.error()), nullptr);
  sp = spec({"attach", "100", "procfs"});
  sp.use_pidfd = false;
  auto ok = Scheduler::start(sp);
  ASSERT_TRUE(ok) << problem_of(ok.error()).message;
  EXPECT_TRUE(ok->stop());
}

volatile sig_atomic_t g_alarms = 0;
void on_alarm(int) {
  g_alarms = g_alarms + 1;
}

TEST_F(SchedulerTest, SignalsInterruptingTheWaitsNeverExtendTheWindow) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_alarm;  // no SA_RESTART: every wait sees EINTR
  sigaction(SIGALRM, &sa, &old);
  itimerval every_3ms{{0, 3000}, {0, 3000}};
  setitimer(ITIMER_REAL, &every_3ms, nullptr);
  auto sp = spec({"never-attach"});
  sp.attach_timeout = 400ms;
  const auto t0 = Clock::now();
  auto s = Scheduler::start(sp);
  const auto took = Clock::now() - t0;
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &old, nullptr);
  ASSERT_FALSE(s);
  EXPECT_NE(std::get_if<AttachTimeout>(&s.error()), nullptr);
  EXPECT_GT(g_alarms, 50);
  EXPECT_LT(took, 700ms);
}

TEST_F(SchedulerTest, AnotherSchedulerAlreadyAttachedIsRefusedUpFront) {
  fs::create_directory(root_ / "root");
  std::ofstream(root_ / "root" / "ops") << "someone_else\n";
  auto s = Scheduler::start(spec({"attach", "0", "mine"}));
  ASSERT_FALSE(s);
  const auto* busy = std::get_if<SchedExtBusy>(&s.error());
  ASSERT_NE(busy, nullptr) << problem_of(s.error()).message;
  EXPECT_EQ(busy->seen.ops, "someone_else");
  EXPECT_FALSE(fs::exists(root_.string() + ".attach_ns")) << "nothing may have been started";
}

TEST_F(SchedulerTest, TheLogTailShowsOnlyThisRun) {
  std::ofstream(dir_ / "sched.log") << "an earlier run's last words\n";
  auto s = Scheduler::start(spec({"crash"}));
  ASSERT_FALSE(s);
  const std::string tail = problem_of(s.error()).log_tail;
  EXPECT_EQ(tail.find("earlier run"), std::string::npos) << tail;
  EXPECT_NE(tail.find("libbpf:"), std::string::npos) << tail;
}

long max_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

TEST_F(SchedulerTest, AHugeLogLineIsReadOnlyAtItsEndWithBoundedMemory) {
  const long rss_before = max_rss_kib();
  const auto t0 = Clock::now();
  auto s = Scheduler::start(spec({"huge-line", "512"}));
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(s);
  ASSERT_NE(std::get_if<DiedDuringLiveness>(&s.error()), nullptr) << problem_of(s.error()).message;
  ASSERT_GT(fs::file_size(dir_ / "sched.log"), 512U << 20);
  const std::string& tail = problem_of(s.error()).log_tail;
  EXPECT_NE(tail.find("verifier rejected the program after a huge line"), std::string::npos);
  EXPECT_LE(tail.size(), 64U * 1024);
  EXPECT_LT(took, 3s);
  EXPECT_LT(max_rss_kib() - rss_before, 64 * 1024) << "KiB more at peak: the log was read whole";
}

TEST_F(SchedulerTest, AHugeKernelLogIsReadOnlyAtItsEnd) {
  auto sp = spec({"attach-then-detach", "0", "600", "fake_stall"});
  sp.kernel_log = (dir_ / "kmsg").string();
  std::ofstream(sp.kernel_log) << "booted\n";
  auto s = Scheduler::start(sp);
  ASSERT_TRUE(s) << problem_of(s.error()).message;
  {
    // 512 MiB of one line (sparse), then the kernel's word on the exit.
    const int fd = open(sp.kernel_log.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, fs::file_size(sp.kernel_log) + (512L << 20)), 0);
    const std::string line = "\nsched_ext: BPF scheduler \"fake_stall\" disabled (scx_bpf_error)\n";
    ASSERT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    close(fd);
  }
  const long rss_before = max_rss_kib();
  auto trouble = s->watch(5s);
  ASSERT_TRUE(trouble);
  ASSERT_TRUE(trouble->kernel_exit);
  EXPECT_EQ(trouble->kernel_exit->kind, ScxExitKind::error_bpf) << "read from the kernel log";
  EXPECT_LT(max_rss_kib() - rss_before, 64 * 1024) << "KiB more at peak: the log was read whole";
  EXPECT_TRUE(s->stop());
}

int subreaper_flag() {
  int flag = -1;
  prctl(PR_GET_CHILD_SUBREAPER, &flag);
  return flag;
}

// Forks a child that forks a grandchild and exits: whose is the orphan?
pid_t orphan_parent() {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t child = fork();
  if (child == 0) {
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      for (;;) pause();
    }
    if (write(fds[1], &grandchild, sizeof(grandchild)) < 0) _exit(2);
    _exit(0);
  }
  pid_t grandchild = 0;
  if (read(fds[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild)) grandchild = 0;
  close(fds[0]);
  close(fds[1]);
  waitpid(child, nullptr, 0);
  if (grandchild <= 0) return -1;
  const std::string stat = slurp(fmt::format("/proc/{}/stat", grandchild));
  int ppid = -1;
  std::sscanf(stat.c_str() + stat.rfind(')') + 4, "%d", &ppid);
  kill(grandchild, SIGKILL);
  reap_if_ours(grandchild);
  return ppid;
}

TEST_F(SchedulerTest, TheSubreaperFlagIsRestoredWhenTheLastSchedulerIsGone) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  {
    auto a = Scheduler::start(spec({"attach", "0", "first"}));
    ASSERT_TRUE(a) << problem_of(a.error()).message;
    EXPECT_EQ(subreaper_flag(), 1) << "while a scheduler runs, its orphans are ours to reap";
    auto b = Scheduler::start(spec({"crash"}));
    ASSERT_FALSE(b);
    EXPECT_EQ(subreaper_flag(), 1) << "another scheduler still runs";
    EXPECT_TRUE(a->stop());
  }
  EXPECT_EQ(subreaper_flag(), 0) << "the flag outlived the last Scheduler";
  EXPECT_NE(orphan_parent(), getpid()) << "an unrelated orphan became this program's child";

  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  {
    auto c = Scheduler::start(spec({"attach", "0", "second"}));
    ASSERT_TRUE(c) << problem_of(c.error()).message;
  }
  EXPECT_EQ(subreaper_flag(), 1) << "a flag the host set itself is left as it was";
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

TEST_F(SchedulerTest, ABadLogPathIsItsOwnErrorNotBlamedOnTheBinary) {
  const auto expect_log_error = [&](const fs::path& log, int err, const char* what) {
    auto sp = spec({"attach", "0", "unlogged"});
    sp.log_path = log.string();
    const auto t0 = Clock::now();
    auto s = Scheduler::start(sp);
    ASSERT_FALSE(s) << what;
    const auto* bad = std::get_if<LogUnwritable>(&s.error());
    ASSERT_NE(bad, nullptr) << what << ": " << problem_of(s.error()).message;
    EXPECT_EQ(bad->sys_errno, err) << what << ": " << bad->message;
    EXPECT_NE(bad->message.find(log.string()), std::string::npos) << bad->message;
    EXPECT_EQ(bad->message.find("executable"), std::string::npos) << bad->message;
    EXPECT_LT(Clock::now() - t0, 1s) << what;
    EXPECT_FALSE(fs::exists(root_.string() + ".pid")) << what << ": something was started";
  };
  expect_log_error(dir_ / "no-such-dir" / "sched.log", ENOENT, "a missing directory");
  expect_log_error(dir_, EISDIR, "a directory");
  const fs::path fifo = dir_ / "log.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_log_error(fifo, ENXIO, "a FIFO nobody reads");
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  expect_log_error(fifo, 0, "a FIFO someone reads");
  close(reader);
}

TEST_F(SchedulerTest, AFifoAsOpsOrStateNeverBlocks) {
  fs::create_directory(root_ / "root");
  ASSERT_EQ(mkfifo((root_ / "root" / "ops").c_str(), 0600), 0);
  int status = cli_status({"never-attach"}, {"--attach-timeout-ms", "800"}, 5s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 5)
      << "a FIFO as root/ops: status " << status << "\n"
      << slurp(dir_ / "cli.out");

  fs::remove_all(root_ / "root");
  fs::remove(root_ / "state");
  ASSERT_EQ(mkfifo((root_ / "state").c_str(), 0600), 0);
  status = cli_status({"never-attach"}, {}, 5s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 6)
      << "a FIFO as state: status " << status << "\n"
      << slurp(dir_ / "cli.out");
}

TEST_F(SchedulerTest, HoldMustBeAFiniteNumberOfSecondsInASaneRange) {
  for (const char* hold : {"nan", "inf", "-inf", "1e10", "-1", "2592001"}) {
    const int status = cli_status({"attach", "0", "held"}, {"--hold", hold}, 5s);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2)
        << "--hold " << hold << ": status " << status;
    const std::string out = slurp(dir_ / "cli.out");
    EXPECT_NE(out.find("scxkit: --hold"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(root_.string() + ".pid")) << "--hold " << hold << " started it";
    fs::remove(root_.string() + ".pid");
  }
  const int status = cli_status({"attach", "0", "held"}, {"--hold", "0.2"}, 5s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir_ / "cli.out");
}

TEST_F(SchedulerTest, BadSpecsAndMissingBinariesAreTheirOwnErrors) {
  auto sp = spec({"attach", "0", "x"});
  sp.attach_timeout = 100ms;
  auto bad = Scheduler::start(sp);
  ASSERT_FALSE(bad);
  EXPECT_NE(std::get_if<InvalidSpec>(&bad.error()), nullptr);
  sp = spec({});
  sp.binary = (dir_ / "no-such-scheduler").string();
  auto missing = Scheduler::start(sp);
  ASSERT_FALSE(missing);
  const auto* spawn = std::get_if<SpawnFailed>(&missing.error());
  ASSERT_NE(spawn, nullptr);
  EXPECT_EQ(spawn->sys_errno, ENOENT);
}

TEST_F(SchedulerTest, OtherThreadsReadThePublishedPid) {
  auto s = Scheduler::start(spec({"attach", "0", "shared"}));
  ASSERT_TRUE(s);
  auto cell = s->published_pid();
  std::atomic<bool> stop{false};
  std::atomic<int> seen_running{0}, seen_gone{0};
  std::thread reader([&] {
    while (!stop) (cell->load() != 0 ? seen_running : seen_gone)++;
  });
  // On a loaded machine the reader may wait long for a CPU: wait for what it sees, bounded.
  EXPECT_TRUE(eventually([&] { return seen_running > 0; }, 5s));
  const bool stopped = s->stop().has_value();
  EXPECT_TRUE(eventually([&] { return seen_gone > 0; }, 5s));
  stop = true;
  reader.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(cell->load(), 0);
}

}  // namespace
}  // namespace scxkit
