// What this host can do, one line per capability: `scxkit doctor`.
#pragma once

#include <string>
#include <vector>

namespace scxkit {

struct Capability {
  std::string name;
  bool available = false;
  std::string reason;  // what was tried and what came of it
};

struct DoctorOptions {
  std::string sched_ext_root = "/sys/kernel/sched_ext";
  std::string mountinfo = "/proc/self/mountinfo";
};

// Probes, in order: bpf_arena, bpf_prog, arena_emulation, sched_ext, cgroup, clang_bpf,
// bpftool, libbpf, bpf_streams.
// Every probe really tries the thing; none reads a version number and guesses.
std::vector<Capability> probe_host(const DoctorOptions& options = {});

}  // namespace scxkit
