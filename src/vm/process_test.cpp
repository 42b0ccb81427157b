#include "vm/process.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace scxkit::vm::internal {
namespace {

using namespace std::chrono_literals;

TEST(Process, ToolOutputIsCapturedApartWithItsExitCode) {
  auto r = run_tool({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}}, Clock::now() + 30s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(Process, ASignalDeathIs128PlusTheSignal) {
  auto r = run_tool({.argv = {"sh", "-c", "kill -9 $$"}}, Clock::now() + 30s);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 128 + SIGKILL);
}

TEST(Process, AToolPastItsDeadlineIsKilled) {
  const auto start = Clock::now();
  auto r = run_tool({.argv = {"sleep", "60"}}, start + 300ms);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("did not finish in time"), std::string::npos);
  EXPECT_LT(Clock::now() - start, 20s);
}

TEST(Process, AMissingProgramIsNotFound) {
  auto r = Subprocess::spawn({{"scxkit-no-such-program"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  auto e = Subprocess::spawn({{"/etc/passwd"}});  // not executable
  ASSERT_FALSE(e);
}

TEST(Process, DescriptorsAreHandedOverByNumber) {
  auto p = pipe_pair();
  ASSERT_TRUE(p);
  auto child = Subprocess::spawn({{"sh", "-c", "echo seven >&7"}, {{7, p->second.get()}}});
  ASSERT_TRUE(child) << child.error().message;
  p->second = Fd();
  EXPECT_EQ(child->wait_until(Clock::now() + 30s), 0);
  bool eof = false;
  auto got = read_some(p->first.get(), 64, &eof);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "seven\n");
}

// The child dies with its parent: here the parent is a forked helper that
// spawns `sleep` and then is SIGKILLed.
TEST(Process, TheChildDiesWhenItsParentIsKilled) {
  auto report = pipe_pair();
  ASSERT_TRUE(report);
  const pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    auto child = Subprocess::spawn({{"sleep", "600"}});
    const pid_t pid = child ? child->pid() : -1;
    (void)!write(report->second.get(), &pid, sizeof pid);
    pause();
    _exit(0);
  }
  report->second = Fd();
  pid_t sleeper = -1;
  ASSERT_EQ(read(report->first.get(), &sleeper, sizeof sleeper),
            static_cast<ssize_t>(sizeof sleeper));
  ASSERT_GT(sleeper, 0);
  kill(helper, SIGKILL);
  waitpid(helper, nullptr, 0);
  // The sleeper is reparented (to init or a subreaper) and killed; wait for it to vanish.
  const auto deadline = Clock::now() + 10s;
  while (kill(sleeper, 0) == 0 && Clock::now() < deadline) {
    waitpid(sleeper, nullptr, WNOHANG);  // in case we are its subreaper
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(kill(sleeper, 0), 0) << "sleep " << sleeper << " outlived its parent";
}

}  // namespace
}  // namespace scxkit::vm::internal
