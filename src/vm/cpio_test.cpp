#include "vm/cpio.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "vm/os.hpp"
#include "vm/process.hpp"

namespace scxkit::vm::internal {
namespace {

TEST(Cpio, AddsParentsOnceAndEndsWithTheTrailer) {
  std::string archive;
  CpioWriter w(&archive);
  w.add_file("/usr/bin/tool", "abc", 0755);
  w.add_file("/usr/bin/tool", "second copy is ignored");
  w.add_char_device("/dev/console", 5, 1);
  w.finish();
  EXPECT_TRUE(w.has("/usr") && w.has("/usr/bin") && w.has("/dev"));
  EXPECT_EQ(archive.size() % 4, 0u);
  EXPECT_EQ(archive.substr(0, 6), "070701");
  EXPECT_NE(archive.find("TRAILER!!!"), std::string::npos);
  EXPECT_EQ(archive.find("second copy"), std::string::npos);
}

// The real reader: cpio(1) must list exactly what was written.
TEST(Cpio, Cpio1ReadsItBack) {
  if (find_executable("cpio").empty())
    GTEST_SKIP() << "cpio(1) is not installed (apt-get install cpio)";
  std::string archive;
  CpioWriter w(&archive);
  w.add_dir("/tmp", 01777);
  w.add_file("/bin/x", "hello", 0755);
  w.add_symlink("/bin/sh", "x");
  w.add_char_device("/dev/console", 5, 1);
  w.finish();
  auto fd = memory_file("cpio-test");
  ASSERT_TRUE(fd);
  ASSERT_TRUE(write_all(fd->get(), archive));
  auto listed =
      run_tool({.argv = {"cpio", "-itv", "-F", fmt::format("/proc/{}/fd/{}", getpid(), fd->get())}},
               Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->status, 0) << listed->err;
  EXPECT_NE(listed->out.find("drwxrwxrwt"), std::string::npos) << listed->out;
  EXPECT_NE(listed->out.find("bin/sh -> x"), std::string::npos) << listed->out;
  EXPECT_NE(listed->out.find("crw-------"), std::string::npos) << listed->out;
  EXPECT_NE(listed->out.find("bin/x"), std::string::npos) << listed->out;
  EXPECT_NE(listed->out.find(" 5,"), std::string::npos) << "device numbers: " << listed->out;
}

}  // namespace
}  // namespace scxkit::vm::internal
