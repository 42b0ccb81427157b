// Other processes, as /proc and kill(2) tell them: state, liveness, and an
// identity that survives pid reuse, for records and locks that processes
// share in memory. Internal; the only place that asks the OS about processes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace scxkit::internal {

// What /proc/<pid>/stat says about a process.
struct ProcStat {
  char state = '?';  // R, S, D, Z, ...
  pid_t ppid = 0;
  std::uint64_t start_ticks = 0;  // field 22: start time in clock ticks after boot
};
std::optional<ProcStat> read_proc_stat(pid_t pid);

// The state letter in /proc/<pid>/stat (R, S, D, Z, ...), or '?' if there is none.
char process_state(pid_t pid);
// Present and not a zombie. A signal still "reaches" a zombie its parent has
// not reaped, so kill(pid, 0) alone would say alive.
bool process_running(pid_t pid);

// A process as other processes can name it in shared memory: its pid and the
// low 32 bits of its start time. A pid the kernel hands to a new process
// after the old one died comes with another start time, so a dead holder's
// pid reused by a stranger does not make the holder look alive. Start times
// count clock ticks (10 ms at USER_HZ 100), so a stranger that gets the pid
// within the tick the holder started in is not told apart — only possible
// when pids are steered (ns_last_pid) or pid_max is tiny — and the low 32
// bits repeat after 497 days. Packs into one 64-bit word; 0 is no process. Pids are those of the
// caller's pid namespace, and /proc must be that namespace's.
struct ProcessId {
  std::uint32_t pid = 0;
  std::uint32_t start = 0;

  std::uint64_t packed() const { return std::uint64_t{start} << 32 | pid; }
  static ProcessId unpack(std::uint64_t w) {
    return {static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(w >> 32)};
  }
  friend bool operator==(const ProcessId&, const ProcessId&) = default;
};

// This process. Its start time is read once, from /proc/self/stat; where that
// cannot be read, start is 0 and only the pid is compared.
ProcessId current_process_id();
// The process is gone: it does not exist, it is a zombie, or its pid now
// belongs to a process that started at another time. Where /proc tells
// nothing about it (hidepid), kill(pid, 0) decides.
bool process_gone(ProcessId id);

}  // namespace scxkit::internal
