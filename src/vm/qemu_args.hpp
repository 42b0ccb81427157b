// The QEMU command line for a run: machine, CPUs and topology, NUMA nodes,
// accelerator, kernel, initramfs, and the two channels (serial console for
// the kernel log, a virtio-serial port for the framed agent channel), both
// on descriptors QEMU inherits.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "scxkit/vm.hpp"

namespace scxkit::vm::internal {

inline constexpr const char* kQemu = "qemu-system-x86_64";

struct MachineSpec {
  unsigned cpus = 2;
  std::optional<Topology> topology;
  unsigned numa_nodes = 1;
  unsigned memory_mib = 1024;
  bool kvm = false;
  std::string kernel, initrd, append;
  int console_fd = -1, channel_fd = -1;  // descriptor numbers as QEMU will see them
};

Result<std::vector<std::string>> qemu_argv(const MachineSpec& spec);

// The kernel command line: console on ttyS0, reboot (= QEMU exits, with
// -no-reboot) at once on panic, no boot-time timer check (see the .cpp).
std::string kernel_cmdline();

}  // namespace scxkit::vm::internal
