// Child processes of the VM runner: QEMU and the tools that fetch and unpack
// a kernel. Unlike the harness's scheduler spawn (posix_spawn), these need a
// parent-death signal, so QEMU dies with scxkit even on SIGKILL, and an exact
// descriptor map, so QEMU inherits the socket pairs it talks through.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vm/os.hpp"

namespace scxkit::vm::internal {

struct SpawnSpec {
  std::vector<std::string> argv;         // argv[0] is searched in PATH
  std::vector<std::pair<int, int>> fds;  // {child fd, parent fd}; every other fd is closed
  std::string cwd;                       // "" = unchanged
};

// A running child in its own process group that gets SIGKILL when this
// process dies. The destructor kills and reaps it (bounded).
class Subprocess {
 public:
  static Result<Subprocess> spawn(const SpawnSpec& spec);
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }  // readable once the child exited
  // Waits for exit until the deadline; the status is the shell's
  // (exit code, or 128+N for signal N). nullopt at the deadline.
  std::optional<int> wait_until(Clock::time_point deadline);
  // SIGKILLs the group and reaps the child (within the deadline).
  void kill_and_reap(Clock::time_point deadline);

 private:
  Subprocess(pid_t pid, Fd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = -1;
  Fd pidfd_;
  std::optional<int> status_;
};

// The absolute path of `name` in PATH (or `name` itself if it holds a '/'
// and is executable); "" if there is none.
std::string find_executable(const std::string& name);

struct ToolSpec {
  std::vector<std::string> argv;
  std::string cwd;           // "" = unchanged
  bool show_output = false;  // stdout and stderr to this process's stderr, for a person
  int stdout_fd = -1;        // >= 0: the tool's stdout goes here instead
};
struct ToolRun {
  int status = -1;
  std::string out, err;  // what was captured
};
// Runs a tool to completion, capturing what it prints unless told otherwise.
// Killed at the deadline, which is then an error.
Result<ToolRun> run_tool(const ToolSpec& spec, Clock::time_point deadline);

}  // namespace scxkit::vm::internal
