#include "vm/shared_libs.hpp"

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "vm/process.hpp"

namespace scxkit::vm::internal {

TEST(SharedLibs, ParsesResolvedLoaderAndMissingLines) {
  const auto p = parse_ldd(
      "\tlinux-vdso.so.1 (0x00007ffd6b1f1000)\n"
      "\tlibfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x00007f1)\n"
      "\tlibgone.so.2 => not found\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n"
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n"
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n");
  EXPECT_EQ(p.paths, (std::vector<std::string>{"/lib/x86_64-linux-gnu/libfmt.so.9",
                                               "/lib/x86_64-linux-gnu/libc.so.6",
                                               "/lib64/ld-linux-x86-64.so.2"}));
  EXPECT_EQ(p.missing, std::vector<std::string>{"libgone.so.2"});
}

TEST(SharedLibs, ThisTestProgramNeedsLibcAndTheLoader) {
  // ldd runs in another process, where /proc/self is not this program.
  auto libs = shared_libraries(std::filesystem::read_symlink("/proc/self/exe").string());
  ASSERT_TRUE(libs) << libs.error().message;
  auto has = [&](const std::string& part) {
    return std::any_of(libs->begin(), libs->end(),
                       [&](const auto& l) { return l.find(part) != std::string::npos; });
  };
  EXPECT_TRUE(has("libc.so.6"));
  EXPECT_TRUE(has("ld-linux-x86-64.so.2"));
}

TEST(SharedLibs, AStaticBinaryAndAScriptNeedNothing) {
  const std::string busybox = find_executable("busybox");
  if (busybox.empty()) GTEST_SKIP() << "busybox is not installed (apt-get install busybox-static)";
  auto libs = shared_libraries(busybox);
  ASSERT_TRUE(libs) << libs.error().message;
  EXPECT_TRUE(libs->empty()) << busybox << " is not static (busybox-static replaces busybox)";
  auto script = shared_libraries("/etc/passwd");
  ASSERT_TRUE(script);
  EXPECT_TRUE(script->empty());
}

}  // namespace scxkit::vm::internal
