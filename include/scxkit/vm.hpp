// Run commands under a real sched_ext kernel: Debian's packaged kernel booted
// in QEMU with an initramfs built on the fly (docs/VM.md).
//
// Contract:
// - `ensure_kernel` finds or fetches a kernel. By default the newest 7.x amd64
//   kernel of Debian's trixie-backports suite, fetched with apt through a
//   private configuration (scxkit's own sources file, lists, cache and state
//   directories; the mirror URI comes from the machine's apt sources, whose
//   files are never modified). Each version is cached once, with vmlinuz, its
//   config, the vmlinux unpacked from vmlinuz (booted directly through its PVH
//   entry: no decompression in the guest) and its BTF (the `.BTF` section).
// - `run` boots that kernel, runs one command as root in the guest, streams
//   the command's stdout and stderr to the given descriptors and the kernel
//   log to its own descriptor, brings files written to $SCXKIT_OUT back out,
//   and powers the guest off. Every wait has a deadline; QEMU is killed when
//   the caller dies (PR_SET_PDEATHSIG), on cancel, on timeout and on a hung
//   guest. No named temporary file exists while a guest runs: the initramfs
//   lives in a memfd and the channels are socket pairs.
// - Failures a person can act on are errors (QEMU missing, no such kernel,
//   download failed); what happened to the guest is a RunResult outcome.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit::vm {

// Progress lines for a person watching ("fetching linux-binary-... (14 MB)").
using ProgressFn = std::function<void(std::string_view)>;

struct KernelOptions {
  // "" for the default (the newest cached 7.x kernel, else the newest 7.x in
  // the suite); a version or version prefix ("7.3", "7.3.4+deb13"); or a path
  // to a vmlinuz (its config and BTF are then looked up beside it, if any).
  std::string spec;
  bool refresh = false;  // refresh the package lists even if a match is cached
  std::string suite = "trixie-backports";
  std::string mirror;             // "" = the first Debian mirror the machine's apt sources name
  std::string cache_dir;          // "" = $XDG_CACHE_HOME/scxkit or ~/.cache/scxkit
  ProgressFn progress;            // may be empty
  bool show_tool_output = false;  // let apt show its own progress (on stderr)
};

struct Kernel {
  std::string version;  // "7.3.4+deb13-amd64" (the kernel release)
  std::string vmlinuz;
  std::string vmlinux;  // the unpacked ELF kernel, booted through its PVH entry; "" if none
  std::string config;   // "" if unknown
  std::string btf;      // raw BTF for `bpftool btf dump file`; "" if unknown
};

Result<Kernel> ensure_kernel(const KernelOptions& options);

struct KernelListing {
  std::vector<std::string> cached;     // kernel releases in the cache
  std::vector<std::string> available;  // kernel releases the suite offers (amd64 flavour)
};
// Refreshes the suite's package lists and lists both.
Result<KernelListing> list_kernels(const KernelOptions& options);

struct Topology {
  unsigned sockets = 1, cores = 1, threads = 1;
  unsigned cpus() const { return sockets * cores * threads; }
};
// "S,C,T" with each count >= 1.
Result<Topology> parse_topology(std::string_view text);

enum class Accel { automatic, tcg, kvm };

struct RunOptions {
  std::vector<std::string> command;  // argv; argv[0] "scxkit" is this program
  Kernel kernel;
  unsigned cpus = 2;  // ignored when topology is set
  std::optional<Topology> topology;
  unsigned numa_nodes = 1;  // > 1: CPUs and memory split evenly across nodes
  unsigned memory_mib = 1024;
  std::chrono::seconds timeout{300};  // the whole run: boot, command, files, power-off
  std::chrono::seconds boot_timeout{120};
  Accel accel = Accel::automatic;    // automatic: KVM only if a probe boots it
  std::vector<std::string> add;      // host files or directories copied in at the same path
  std::string out_dir;               // "" = files written to $SCXKIT_OUT are dropped
  std::string cache_dir;             // for the KVM probe verdict; "" = default
  int stdout_fd = 1, stderr_fd = 2;  // where the command's output goes
  int kernel_log_fd = -1;            // where the guest's console goes (-1: nowhere)
  int cancel_fd = -1;                // readable = cancel (e.g. a self-pipe for SIGINT)
  ProgressFn progress;
};

struct RunResult {
  enum class Outcome {
    exited,        // the command ran; `status` is its exit code (128+N if killed by signal N)
    not_started,   // the command could not be executed in the guest (status 126 or 127)
    kernel_panic,  // the guest kernel panicked; `kernel_lines` hold the report
    kernel_oops,   // the guest kernel oopsed (and did not panic); `kernel_lines` hold it
    timed_out,     // the run passed its timeout; `kernel_lines` hold the last console lines
    boot_failed,   // the guest never reached the agent; `kernel_lines` hold the last console lines
    agent_lost,    // QEMU exited before the agent reported; `kernel_lines` hold the last console
                   // lines
    cancelled,
  };
  Outcome outcome = Outcome::agent_lost;
  int status = -1;
  std::vector<std::string> kernel_lines;
  std::string accel;                       // "tcg" or "kvm"
  std::chrono::milliseconds boot_time{0};  // QEMU start to the agent's first word
  std::chrono::milliseconds total_time{0};
  std::size_t files_out = 0;
  std::string message;  // one line saying what happened
};

Result<RunResult> run(const RunOptions& options);

// The process exit code that represents a result: the command's status, or
// 123 kernel panic/oops, 124 timeout, 125 boot failure or lost guest, 130 cancelled.
int exit_code_of(const RunResult& result);

// Runs inside the guest as the agent /init starts: executes the command the
// initramfs carries and reports over the control port. Returns only on failure.
int guest_agent_main();

}  // namespace scxkit::vm
