#include "harness/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <fstream>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "harness/kernel_files.hpp"

extern char** environ;

namespace scxkit::internal {

namespace {

int poll_ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Alive per /proc: present and not a zombie.
bool proc_alive(pid_t pid) {
  const char state = process_state(pid);
  return state != '?' && state != 'Z' && state != 'X';
}

}  // namespace

char process_state(pid_t pid) {
  const auto st = read_proc_stat(pid);
  return st ? st->state : '?';
}

Result<ChildProcess> ChildProcess::spawn(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const std::string& log_path, bool use_pidfd) {
  // Orphaned helpers of the scheduler are reparented to us, so they can be reaped.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);  // nothing ignored is inherited
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return os_error(fmt::format("starting '{}'", binary), rc);

  int pidfd = -1;
  if (use_pidfd) {
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0 && errno != ENOSYS) {
      const int e = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return os_error("pidfd_open on the new process", e);
    }
  }
  return ChildProcess(pid, pidfd);
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      pidfd_(std::exchange(o.pidfd_, -1)),
      reaped_(std::move(o.reaped_)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    // Never leave an orphan or a zombie behind, even on an error path.
    kill_and_reap_group(Clock::now() + std::chrono::seconds(2));
  }
  if (pidfd_ >= 0) close(pidfd_);
}

bool ChildProcess::has_exited() const {
  if (reaped_) return true;
  if (pidfd_ >= 0) {
    pollfd p{pidfd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }
  return !proc_alive(pid_);
}

bool ChildProcess::wait_exit_until(Clock::time_point deadline) const {
  if (pidfd_ < 0) {
    // /proc fallback: a short cadence, never past the deadline.
    while (!has_exited()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(
          std::min<Clock::duration>(std::chrono::milliseconds(5), deadline - Clock::now()));
    }
    return true;
  }
  for (;;) {
    if (reaped_) return true;
    pollfd p{pidfd_, POLLIN, 0};
    const int n = poll(&p, 1, poll_ms_until(deadline));
    if (n > 0) return true;
    if (n == 0 && Clock::now() >= deadline) return false;
    // EINTR, or woke a hair early: recompute from the same deadline.
  }
}

ProcessExit ChildProcess::reap() {
  if (reaped_) return *reaped_;
  siginfo_t info{};
  ProcessExit exit;
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) == 0) {
    exit.known = true;
    exit.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    exit.code = info.si_status;
  }  // ECHILD: the kernel reaped it already because SIGCHLD is ignored
  reaped_ = exit;
  return exit;
}

void ChildProcess::signal_group(int sig) const {
  if (pid_ > 0) kill(-pid_, sig);
}

bool ChildProcess::kill_and_reap_group(Clock::time_point deadline) {
  signal_group(SIGKILL);
  if (!wait_exit_until(deadline)) return false;
  reap();
  // Helpers left in the group were reparented to us (subreaper): kill and
  // reap until the group is empty. With SIGCHLD ignored the kernel reaps them.
  for (;;) {
    while (waitpid(-pid_, nullptr, WNOHANG) > 0) {
    }
    if (kill(-pid_, 0) != 0 && errno == ESRCH) return true;
    if (Clock::now() >= deadline) return false;
    kill(-pid_, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::string tail_lines(const std::string& path, std::size_t lines, std::uint64_t from) {
  std::ifstream in(path);
  in.seekg(static_cast<std::streamoff>(from));
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += l + "\n";
  return out;
}

}  // namespace scxkit::internal
