#include "common/process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace scxkit {
namespace {

using internal::ProcessId;

TEST(Process, ThisProcessIsNamedByPidAndStartTimeAndIsNotGone) {
  const ProcessId me = internal::current_process_id();
  EXPECT_EQ(me.pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_NE(me.start, 0u) << "/proc/self/stat gave no start time";
  EXPECT_EQ(ProcessId::unpack(me.packed()), me);
  EXPECT_FALSE(internal::process_gone(me));
  EXPECT_TRUE(internal::process_running(getpid()));
}

TEST(Process, AnotherStartTimeOnTheSamePidIsAnotherProcess) {
  ProcessId other = internal::current_process_id();
  other.start += 1;
  EXPECT_TRUE(internal::process_gone(other));
}

TEST(Process, AZombieAndAReapedChildAreGone) {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  const ProcessId id{static_cast<std::uint32_t>(child), 0};
  // Until reaped it is a zombie: kill(pid, 0) still succeeds, but it is gone.
  for (int i = 0; i < 5000 && internal::process_state(child) != 'Z'; ++i) usleep(1000);
  EXPECT_EQ(internal::process_state(child), 'Z');
  EXPECT_TRUE(internal::process_gone(id));
  EXPECT_FALSE(internal::process_running(child));
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_TRUE(internal::process_gone(id));
  EXPECT_EQ(internal::process_state(child), '?');
}

}  // namespace
}  // namespace scxkit
