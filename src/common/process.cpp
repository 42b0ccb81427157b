#include "common/process.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "common/kernel_files.hpp"

namespace scxkit::internal {

namespace {

std::optional<ProcStat> parse_stat(const std::string& path) {
  auto text = read_kernel_file(path, 4096);
  if (!text) return std::nullopt;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
  const auto close_paren = text->rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  ProcStat st;
  int ppid = 0;
  unsigned long long start = 0;
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
  // cstime priority nice num_threads itrealvalue starttime
  if (std::sscanf(text->c_str() + close_paren + 1,
                  " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                  &st.state, &ppid, &start) != 3) {
    return std::nullopt;
  }
  st.ppid = ppid;
  st.start_ticks = start;
  return st;
}

std::uint32_t low32(std::uint64_t v) {
  return static_cast<std::uint32_t>(v);
}

}  // namespace

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  return parse_stat(fmt::format("/proc/{}/stat", pid));
}

char process_state(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st ? st->state : '?';
}

bool process_running(pid_t pid) {
  const char state = process_state(pid);
  return state != '?' && state != 'Z' && state != 'X';
}

ProcessId current_process_id() {
  // /proc/self is this process in any pid namespace; /proc/<getpid()> may not be.
  const auto st = parse_stat("/proc/self/stat");
  return {static_cast<std::uint32_t>(getpid()), st ? low32(st->start_ticks) : 0};
}

bool process_gone(ProcessId id) {
  const auto pid = static_cast<pid_t>(id.pid);
  const auto st = read_proc_stat(pid);
  if (!st) return kill(pid, 0) != 0 && errno == ESRCH;
  if (st->state == 'Z' || st->state == 'X') return true;
  return id.start != 0 && low32(st->start_ticks) != id.start;
}

}  // namespace scxkit::internal
