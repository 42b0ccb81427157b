// Helpers shared by the allocator tests.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "scxkit/arena.hpp"
#include "scxkit/error.hpp"

namespace scxkit::testing_support {

// The value of a Result the test cannot go on without; an error ends the test
// (gtest reports the exception with its message).
template <class T>
T created(Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(*r);
}

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
inline constexpr const char* kKernelArenaUnderTsan =
    "ThreadSanitizer cannot see the kernel arena's own lock, which orders a page one thread "
    "frees before another thread gets it back from the kernel, so it reports the reuse as a race";

inline const char* backend_name(ArenaBackend b) {
  return b == ArenaBackend::kernel ? "kernel" : "emulated";
}

// Why a kernel arena cannot exist here (not root, no BPF arenas), or "" if
// it can. Asked once per test program.
inline const std::string& kernel_arena_missing() {
  static const std::string why = [] {
    auto a = Arena::create({.max_entries = 1, .backend = ArenaBackend::kernel});
    if (a) return std::string();
    return a.error().code == Errc::unsupported
               ? a.error().message
               : "creating a kernel arena failed: " + a.error().message;
  }();
  return why;
}

// An allocator test that runs on every arena backend; on the kernel backend
// it skips, saying why, where the kernel has no BPF arenas for us.
class OnEachBackend : public ::testing::TestWithParam<ArenaBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == ArenaBackend::kernel && !kernel_arena_missing().empty()) {
      GTEST_SKIP() << kernel_arena_missing();
    }
  }
  bool kernel() const { return GetParam() == ArenaBackend::kernel; }
  Arena make_arena(std::uint32_t pages, std::uint64_t map_extra = 0) const {
    return created(
        Arena::create({.max_entries = pages, .map_extra = map_extra, .backend = GetParam()}));
  }
};

// Test names end in the backend: Suite/Case/emulated, Suite/Case/kernel.
inline std::string backend_param_name(const ::testing::TestParamInfo<ArenaBackend>& info) {
  return backend_name(info.param);
}
#define SCXKIT_ON_EACH_BACKEND(suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(, suite,                                                         \
                           ::testing::Values(ArenaBackend::emulated, ArenaBackend::kernel), \
                           ::scxkit::testing_support::backend_param_name)

// Pages the arena has allocated, on any backend (the kernel backend has no
// stats(): count the pages that are backed).
inline std::uint64_t allocated_pages(const Arena& a) {
  if (auto s = a.stats()) return s->allocated_pages;
  std::uint64_t n = 0;
  for (std::uint64_t addr = a.user_vm_start(); addr < a.user_vm_end(); addr += kPageSize) {
    n += a.page_state(static_cast<std::uint32_t>(addr)) == PageState::allocated;
  }
  return n;
}

// The exit code of child `pid`, or 128 + signal; SIGKILLed after `seconds`
// (then reaped within 10 s more, or -1).
inline int wait_exit(pid_t pid, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  bool killed = false;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      if (killed) return -1;
      kill(pid, SIGKILL);
      killed = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Exit code of a function run where pids can be reused on purpose.
inline constexpr int kNoPrivateNamespaces = 77;  // not allowed here (needs root)
inline constexpr int kPidNotReused = 78;         // the kernel did not hand out the pid asked for

// Runs fn() (returning an exit code) as pid 1 of a fresh pid namespace with
// its own /proc (in a private mount namespace), so that it can steer which
// pid the next process gets: write `pid - 1` to ns_last_pid (see
// reuse_pid_next()). Returns fn's exit code, kNoPrivateNamespaces when the
// namespaces cannot be made here; the whole tree is killed after 60 s.
template <class Fn>
int in_private_pid_namespace(Fn fn) {
  const pid_t outer = fork();
  if (outer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      _exit(kNoPrivateNamespaces);
    }
    const pid_t init = fork();
    if (init == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        _exit(kNoPrivateNamespaces);
      }
      int rc = 20;
      try {
        rc = fn();
      } catch (const std::exception&) {
      }
      _exit(rc);
    }
    _exit(wait_exit(init, 60));
  }
  return wait_exit(outer, 90);
}

// Inside in_private_pid_namespace(): the next process created gets `pid`
// (if it is free). False if ns_last_pid cannot be written. Waits 3 clock
// ticks first: a stranger started in the very tick its pid's last owner
// started in is the documented blind spot of ProcessId, not what tests of
// pid reuse are after.
inline bool reuse_pid_next(pid_t pid) {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::ofstream last("/proc/sys/kernel/ns_last_pid");
  last << pid - 1;
  return static_cast<bool>(last.flush());
}

// A process that does nothing until the pipe `release` is closed by the
// caller (or 60 s pass): a stranger holding a pid.
inline pid_t start_bystander(const int (&release)[2]) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    close(release[1]);
    char c;
    while (read(release[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  return pid;
}

}  // namespace scxkit::testing_support
