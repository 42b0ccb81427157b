#include "harness/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "common/process.hpp"
#include "common/unique_fd.hpp"

extern char** environ;

namespace scxkit::internal {

namespace {

int poll_ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// The path execve() gets: `binary` itself if it names a path, else the first
// executable regular file of that name in PATH (resolved here, not after fork).
Result<std::string> resolve_binary(const std::string& binary) {
  if (binary.find('/') != std::string::npos) return binary;
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  int first_err = ENOENT;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + binary;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      first_err = EACCES;
    }
    start = end + 1;
  }
  return os_error(fmt::format("'{}' not found in PATH", binary), first_err);
}

// What the child reports when a step before exec fails.
struct ChildFailure {
  int step;
  int err;
};
constexpr const char* kSteps[] = {"setting its process group",
                                  "joining its cgroup",
                                  "redirecting its output",
                                  "resetting its signals",
                                  "exec",
                                  "setting its parent-death signal"};

[[noreturn]] void child_fail(int report_fd, int step) {
  const ChildFailure f{step, errno};
  if (write(report_fd, &f, sizeof(f)) < 0) {
  }  // nothing left to tell it with
  _exit(127);
}

// After fork, before exec: async-signal-safe calls only, and no return.
[[noreturn]] void child_exec(pid_t parent, const char* path, char* const argv[], int go_fd,
                             int report_fd, int null_fd, int log_fd,
                             const std::vector<int>& join_fds) {
  const auto fail = [report_fd](int step) { child_fail(report_fd, step); };
  // Dies with the harness, even by SIGKILL. Set after fork, so check that the
  // parent did not die before it was set.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(5);
  if (getppid() != parent) _exit(127);
  // Held until the parent has its pidfd: a child that died and was reaped at
  // once (SIGCHLD ignored) could otherwise hand its pid to another process.
  char go = 0;
  ssize_t n;
  do {
    n = read(go_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) _exit(127);  // the parent is gone
  if (setpgid(0, 0) != 0) fail(0);
  for (int fd : join_fds) {
    if (write(fd, "0", 1) != 1) fail(1);
  }
  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
      dup2(log_fd, STDERR_FILENO) < 0) {
    fail(2);
  }
  // Nothing ignored or blocked here is inherited by the scheduler.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);  // EINVAL: not a signal
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail(3);
  execve(path, argv, environ);
  child_fail(report_fd, 4);
}

}  // namespace

Result<ChildProcess> ChildProcess::spawn(const SpawnSpec& spec) {
  auto path = resolve_binary(spec.binary);
  if (!path) return tl::unexpected(path.error());
  UniqueFd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd) return os_error("opening /dev/null", errno);
  std::vector<UniqueFd> join;
  std::vector<int> join_fds;
  for (const auto& file : spec.join_procs_files) {
    join.emplace_back(open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!join.back()) return os_error(fmt::format("opening {}", file), errno);
    join_fds.push_back(join.back().get());
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(spec.binary.c_str()));
  for (const auto& a : spec.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int report[2], go[2];
  if (pipe2(report, O_CLOEXEC) != 0) return os_error("pipe2", errno);
  UniqueFd report_read(report[0]), report_write(report[1]);
  // A socket, so that releasing a child killed meanwhile is EPIPE, not SIGPIPE.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) != 0) {
    return os_error("socketpair", errno);
  }
  UniqueFd go_read(go[0]), go_write(go[1]);

  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return os_error("fork", errno);
  if (pid == 0) {
    child_exec(parent, path->c_str(), argv.data(), go[0], report[1], null_fd.get(), spec.log_fd,
               join_fds);
  }
  report_write.reset();
  go_read.reset();
  const auto abandon = [pid](std::string what, int err) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return os_error(what, err);
  };
  UniqueFd pidfd;
  if (spec.use_pidfd) {
    pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd && errno != ENOSYS) return abandon("pidfd_open on the new process", errno);
  }
  if (send(go_write.get(), "g", 1, MSG_NOSIGNAL) != 1) {
    return abandon("releasing the new process", errno);
  }
  go_write.reset();
  // EOF: exec succeeded (the pipe closed on exec); a record: the step that failed.
  const auto exec_deadline = Clock::now() + spec.exec_timeout;
  for (;;) {
    pollfd p{report_read.get(), POLLIN, 0};
    const int ready = poll(&p, 1, poll_ms_until(exec_deadline));
    if (ready > 0) break;
    if (ready == 0 && Clock::now() >= exec_deadline) {
      return abandon(fmt::format("starting '{}': exec did not finish within {} ms", spec.binary,
                                 spec.exec_timeout.count()),
                     ETIMEDOUT);
    }
  }
  ChildFailure failure{};
  ssize_t n;
  do {
    n = read(report_read.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    waitpid(pid, nullptr, 0);  // it _exit()s at once
    const auto step = static_cast<std::size_t>(failure.step);
    return os_error(fmt::format("starting '{}': {}", spec.binary,
                                step < std::size(kSteps) ? kSteps[step] : "an unknown step"),
                    failure.err);
  }
  return ChildProcess(pid, pidfd.release());
}

Result<ChildProcess> ChildProcess::adopt(pid_t pid, bool use_pidfd) {
  int pidfd = -1;
  if (use_pidfd) {
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0 && errno != ENOSYS) {
      const int err = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return os_error("pidfd_open on the new process", err);
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
  return !process_running(pid_);
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

namespace {
std::mutex g_subreaper_mutex;
int g_subreaper_holds = 0;
int g_subreaper_before = 0;
}  // namespace

Result<SubreaperHold> SubreaperHold::acquire() {
  std::lock_guard lock(g_subreaper_mutex);
  if (g_subreaper_holds == 0) {
    int before = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &before) != 0) {
      return os_error("prctl(PR_GET_CHILD_SUBREAPER)", errno);
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
      return os_error("prctl(PR_SET_CHILD_SUBREAPER)", errno);
    }
    g_subreaper_before = before;
  }
  ++g_subreaper_holds;
  SubreaperHold hold;
  hold.held_ = true;
  return hold;
}

SubreaperHold::~SubreaperHold() {
  if (!held_) return;
  std::lock_guard lock(g_subreaper_mutex);
  // Setting back a value the kernel gave us: only EINVAL could fail, and cannot.
  if (--g_subreaper_holds == 0) prctl(PR_SET_CHILD_SUBREAPER, g_subreaper_before);
}

bool ChildProcess::reap_helpers(std::vector<pid_t> pids, Clock::time_point deadline) {
  for (;;) {
    std::erase_if(pids, [](pid_t pid) {
      const pid_t r = waitpid(pid, nullptr, WNOHANG);
      if (r == pid) return true;
      // Not (yet) our child: its parent is still exiting, or someone reaped it.
      return r < 0 && errno == ECHILD && kill(pid, 0) != 0 && errno == ESRCH;
    });
    if (pids.empty()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace scxkit::internal
