#include "vm/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include <fmt/format.h>

extern char** environ;

namespace scxkit::vm::internal {

namespace {

int shell_status(const siginfo_t& info) {
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

// In the child after fork: async-signal-safe calls only.
[[noreturn]] void exec_child(const SpawnSpec& spec, const char* path, char* const* argv,
                             pid_t parent, int error_pipe) {
  // Die with the parent; if it died already, the signal would never come.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(127);
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  // Move every source above every target first, so no dup2 clobbers a source.
  int moved[64];
  const std::size_t n = spec.fds.size() < 64 ? spec.fds.size() : 64;
  int max_target = error_pipe;
  for (std::size_t i = 0; i < n; ++i) {
    if (spec.fds[i].first > max_target) max_target = spec.fds[i].first;
  }
  for (std::size_t i = 0; i < n; ++i) {
    moved[i] = ::fcntl(spec.fds[i].second, F_DUPFD_CLOEXEC, max_target + 1 + 64);
    if (moved[i] < 0) ::_exit(127);
  }
  int err_fd = ::fcntl(error_pipe, F_DUPFD_CLOEXEC, max_target + 1 + 64 + 64);
  for (std::size_t i = 0; i < n; ++i) {
    if (::dup2(moved[i], spec.fds[i].first) < 0) ::_exit(127);
  }
  // Everything else goes, except the (close-on-exec) error pipe.
  for (int fd = 0; fd <= max_target; ++fd) {
    bool kept = false;
    for (std::size_t i = 0; i < n; ++i) kept = kept || spec.fds[i].first == fd;
    if (!kept) ::close(fd);
  }
  ::close_range(static_cast<unsigned>(max_target) + 1, static_cast<unsigned>(err_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(err_fd) + 1, UINT_MAX, 0);
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
    const int e = errno;
    (void)!::write(err_fd, &e, sizeof e);
    ::_exit(127);
  }
  ::execve(path, argv, environ);
  const int e = errno;
  (void)!::write(err_fd, &e, sizeof e);
  ::_exit(127);
}

}  // namespace

std::string find_executable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = end > start ? dirs.substr(start, end - start) : ".";
    candidate += '/';
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

Result<Subprocess> Subprocess::spawn(const SpawnSpec& spec) {
  if (spec.argv.empty()) return make_error(Errc::invalid_argument, "no program to start");
  if (spec.fds.size() > 64) return make_error(Errc::too_big, "too many descriptors to hand over");
  const std::string path = find_executable(spec.argv[0]);
  if (path.empty())
    return make_error(Errc::not_found, fmt::format("'{}' not found in PATH", spec.argv[0]));
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  auto error_pipe = pipe_pair();
  if (!error_pipe) return tl::unexpected(error_pipe.error());

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return os_error("fork", errno);
  if (pid == 0) exec_child(spec, path.c_str(), argv.data(), parent, error_pipe->second.get());
  ::setpgid(pid, pid);  // also here, so signalling the group works right away
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) {
    const int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return os_error("pidfd_open", e);
  }
  Subprocess child(pid, std::move(pidfd));
  error_pipe->second = Fd();  // our copy of the write end: EOF once exec succeeded
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe->first.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    child.kill_and_reap(Clock::now() + std::chrono::seconds(5));
    return os_error(fmt::format("starting {}", path), child_errno);
  }
  return child;
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)), status_(o.status_) {}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !status_) kill_and_reap(Clock::now() + std::chrono::seconds(5));
}

std::optional<int> Subprocess::wait_until(Clock::time_point deadline) {
  if (status_) return status_;
  for (;;) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, poll_ms_until(deadline));
    if (n > 0) break;
    if (n == 0 && Clock::now() >= deadline) return std::nullopt;
  }
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) == 0) {
    status_ = shell_status(info);
  } else {
    status_ = -1;  // reaped elsewhere (SIGCHLD ignored): unknown
  }
  return status_;
}

void Subprocess::kill_and_reap(Clock::time_point deadline) {
  if (pid_ <= 0 || status_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  wait_until(deadline);
}

Result<ToolRun> run_tool(const ToolSpec& tool, Clock::time_point deadline) {
  const auto& argv = tool.argv;
  auto out = pipe_pair();
  auto err = pipe_pair();
  if (!out || !err) return tl::unexpected(!out ? out.error() : err.error());
  Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_in.get() < 0) return os_error("opening /dev/null", errno);
  SpawnSpec spec{argv, {{0, null_in.get()}}, tool.cwd};
  spec.fds.push_back({1, tool.stdout_fd >= 0 ? tool.stdout_fd
                         : tool.show_output  ? STDERR_FILENO
                                             : out->second.get()});
  spec.fds.push_back({2, tool.show_output ? STDERR_FILENO : err->second.get()});
  auto child = Subprocess::spawn(spec);
  if (!child) return tl::unexpected(child.error());
  out->second = Fd();
  err->second = Fd();
  ToolRun result;
  pollfd fds[2] = {{out->first.get(), POLLIN, 0}, {err->first.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_streams = 2;
  while (open_streams > 0) {
    const int n = ::poll(fds, 2, poll_ms_until(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("poll", errno);
    if (n == 0) {
      child->kill_and_reap(Clock::now() + std::chrono::seconds(5));
      return make_error(Errc::busy,
                        fmt::format("'{}' did not finish in time; it was killed", argv[0]));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      bool eof = false;
      auto chunk = read_some(fds[i].fd, 1 << 16, &eof);
      if (!chunk) return tl::unexpected(chunk.error());
      *sinks[i] += *chunk;
      if (eof) {
        fds[i].fd = -1;
        --open_streams;
      }
    }
  }
  const auto status = child->wait_until(deadline);
  if (!status) {
    child->kill_and_reap(Clock::now() + std::chrono::seconds(5));
    return make_error(Errc::busy,
                      fmt::format("'{}' did not finish in time; it was killed", argv[0]));
  }
  result.status = *status;
  return result;
}

}  // namespace scxkit::vm::internal
