#include "vm/console.hpp"

#include <gtest/gtest.h>

namespace scxkit::vm::internal {
namespace {

TEST(Console, TerminalCodesFromTheFirmwareAreStripped) {
  EXPECT_EQ(strip_terminal_codes("\x1b"
                                 "c\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r"),
            "SeaBIOS (version 1.16.2)");
  EXPECT_EQ(strip_terminal_codes("a\tb"), "a\tb");
}

TEST(Console, LinesArriveWhenCompleteAndTheRestOnFlush) {
  ConsoleLog log;
  EXPECT_TRUE(log.feed("[    0.000000] Linux ver").empty());
  EXPECT_EQ(log.feed("sion 7.3.4\r\n[    0.1] next"),
            std::vector<std::string>{"[    0.000000] Linux version 7.3.4"});
  EXPECT_EQ(log.flush(), std::vector<std::string>{"[    0.1] next"});
  EXPECT_FALSE(log.panicked());
  EXPECT_FALSE(log.oopsed());
}

TEST(Console, APanicReportStartsWithItsContext) {
  ConsoleLog log;
  log.feed(
      "[    3.0] boring\n[    3.1] sysrq: Trigger a crash\n"
      "[    3.2] Kernel panic - not syncing: sysrq triggered crash\n[    3.3] CPU: 0 PID: 70\n");
  EXPECT_TRUE(log.panicked());
  ASSERT_GE(log.report().size(), 4u);
  EXPECT_EQ(log.report()[1], "[    3.1] sysrq: Trigger a crash");
  EXPECT_EQ(log.report()[2], "[    3.2] Kernel panic - not syncing: sysrq triggered crash");
  EXPECT_EQ(log.report().back(), "[    3.3] CPU: 0 PID: 70");
}

TEST(Console, AnOopsIsNotAPanic) {
  ConsoleLog log;
  log.feed(
      "[ 5.0] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
      "[ 5.0] Oops: Oops: 0002 [#1] SMP NOPTI\n");
  EXPECT_TRUE(log.oopsed());
  EXPECT_FALSE(log.panicked());
  EXPECT_EQ(log.report().size(), 2u);
}

TEST(Console, KeepsOnlyTheLastLines) {
  ConsoleLog log(3);
  log.feed("1\n2\n3\n4\n5\n");
  EXPECT_EQ(log.last_lines(), (std::vector<std::string>{"3", "4", "5"}));
}

}  // namespace
}  // namespace scxkit::vm::internal
