// What the kernel's sched_ext interface says, read from sysfs and the kernel log.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace scxkit {

// enum scx_exit_kind, with the kernel's values.
enum class ScxExitKind : int {
  none = 0,
  done = 1,
  unreg = 64,
  unreg_bpf = 65,
  unreg_kern = 66,
  sysrq = 67,
  error = 1024,
  error_bpf = 1025,
  error_stall = 1026,
};

std::string_view to_string(ScxExitKind kind);

struct ScxExit {
  ScxExitKind kind = ScxExitKind::none;
  std::string reason;  // the kernel's words, e.g. "runnable task stall"
  std::string line;    // the whole line it came from
};

// The last exit the kernel reported in `text` (kernel log or a scheduler's
// log), from lines like `sched_ext: BPF scheduler "x" disabled (runnable task stall)`.
std::optional<ScxExit> find_scx_exit(std::string_view text);

// /sys/kernel/sched_ext as it reads now.
struct SchedExtStatus {
  bool present = false;  // <root>/state was readable
  std::string state;     // enabling, enabled, disabling, disabled
  std::string ops;       // <root>/root/ops: the attached scheduler's name, or ""
};

SchedExtStatus read_sched_ext_status(const std::string& root);

}  // namespace scxkit
