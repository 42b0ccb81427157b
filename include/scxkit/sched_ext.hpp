// What the kernel's sched_ext interface says, read from sysfs and the kernel log.
#pragma once

#include <cstddef>
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
  parent = 68,       // Linux 7.x sub-schedulers: the parent scheduler went away
  parent_kill = 69,  // ... or kicked this one out
  error = 1024,
  error_bpf = 1025,
  error_stall = 1026,
  error_reenq = 1027,   // Linux 7.x
  error_rescue = 1028,  // Linux 7.x
};

std::string_view to_string(ScxExitKind kind);

struct ScxExit {
  ScxExitKind kind = ScxExitKind::none;
  std::string reason;   // the kernel's words, e.g. "runnable task stall"
  std::string message;  // the exit message, e.g. "victim[93] failed to run for 2.512s"; may be ""
  std::string line;     // the whole line it came from
};

// The last exit the kernel reported in `text` (kernel log or a scheduler's
// log), from lines like `sched_ext: BPF scheduler "x" disabled (runnable task stall)`,
// with its message from the line the kernel prints after an error exit
// (`sched_ext: x: victim[93] failed to run for 2.512s`).
std::optional<ScxExit> find_scx_exit(std::string_view text);

// The last exit record a loader printed in `text` (its log), in the line
// format of scxkit's example loaders (examples/common/loader.hpp):
//   `scx_x: exit kind 1026 (ERROR_STALL) code 0, kicked out by the kernel; reason: R; message: M`
// The kind is the number the kernel put in scx_exit_info; "\n" in the
// message stands for a newline.
std::optional<ScxExit> find_loader_exit(std::string_view text);

// The verifier's complaint in a scheduler's log, from the last verifier log
// libbpf printed there (after "-- BEGIN PROG LOAD LOG --"): the lines after
// the last instruction the verifier walked, up to a blank line or its
// "processed N insns" summary, and its "Verification failed: ..." line where
// it writes one; at most `max_lines` lines, "\n"-separated; "" when there is
// no verifier log.
std::string find_verifier_lines(std::string_view text, std::size_t max_lines = 6);

// /sys/kernel/sched_ext as it reads now.
struct SchedExtStatus {
  bool present = false;  // <root>/state was readable
  std::string state;     // enabling, enabled, disabling, disabled
  std::string ops;       // <root>/root/ops: the attached scheduler's name, or ""
};

SchedExtStatus read_sched_ext_status(const std::string& root);

}  // namespace scxkit
