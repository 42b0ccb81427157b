// The guest's root file system, built for each run: busybox (static), an
// /init script, scxkit itself as the guest agent, the command's binary and
// any added files, each ELF file with every shared library it loads.
#pragma once

#include <string>
#include <vector>

#include "vm/os.hpp"

namespace scxkit::vm::internal {

// Guest paths the agent and /init agree on.
inline constexpr const char* kGuestAgent = "/scxkit/bin/scxkit";
inline constexpr const char* kGuestCommand = "/scxkit/command";  // argv, NUL-separated
inline constexpr const char* kGuestOut = "/out";                 // $SCXKIT_OUT
inline constexpr const char* kControlPort = "scxkit.ctl";        // virtio-serial port name

struct GuestImageSpec {
  std::vector<std::string> command;
  std::vector<std::string> add;  // host files or directories, copied in at the same path
  std::string self_exe;          // this scxkit, run in the guest as the agent
};

struct GuestImage {
  Fd fd;  // a memfd holding the cpio archive
  std::size_t bytes = 0, files = 0;
};

Result<GuestImage> build_initramfs(const GuestImageSpec& spec);

// The /init script: mounts, then runs the agent; powers off if the agent fails.
std::string init_script(const std::string& library_path);

}  // namespace scxkit::vm::internal
