// What the VM tier's tests share: whether QEMU and the sched_ext kernel can be
// had here (else the tests skip with the reason), and running the real
// scxkit program (SCXKIT_BIN) with a deadline.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "vm/process.hpp"

namespace scxkit::vm::test_support {

using namespace std::chrono_literals;

inline constexpr const char* kQemuName = "qemu-system-x86_64";
inline constexpr auto kRunDeadline = 240s;  // a loaded 2-core machine boots slowly

// "" when guests can boot here; otherwise why not. Fetches the kernel if needed.
inline std::string vm_tier_skip_reason() {
  if (internal::find_executable(kQemuName).empty()) {
    return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)";
  }
  auto k = internal::run_tool({.argv = {SCXKIT_BIN, "vm", "kernel", "-q"}},
                              internal::Clock::now() + 15min);
  if (!k || k->status != 0) {
    return "no sched_ext kernel could be had: " + (k ? k->err : k.error().message);
  }
  return "";
}

// Runs `scxkit ARGS...`; a run that cannot start or passes the deadline
// fails the test and returns an empty ToolRun.
inline internal::ToolRun run_scxkit(std::vector<std::string> args,
                                    std::chrono::seconds deadline = kRunDeadline) {
  args.insert(args.begin(), SCXKIT_BIN);
  auto r = internal::run_tool({.argv = args}, internal::Clock::now() + deadline);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : internal::ToolRun{};
}

}  // namespace scxkit::vm::test_support
