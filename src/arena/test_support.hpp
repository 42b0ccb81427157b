// Helpers shared by the arena tests.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arena/emulated/arena_impl.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::internal {

namespace testing_support {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

// A death by SIGSEGV. In sanitizer builds the handler we chain to is the
// sanitizer's, which reports the SEGV and exits non-zero instead.
inline bool died_of_segv(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV;
  return kSanitizerBuild && WIFEXITED(status) && WEXITSTATUS(status) != 0;
}
inline constexpr const char* kSegvReport = kSanitizerBuild ? "SEGV" : "";

// A 4 GiB-aligned address with `size` free bytes after it, found by asking
// the kernel (never hard-coded, so sanitizers' memory layouts are respected).
inline std::uint64_t free_aligned_address(std::uint64_t size) {
  const std::uint64_t span = size + k4GiB;
  void* p = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  EXPECT_NE(p, MAP_FAILED);
  munmap(p, span);
  return (reinterpret_cast<std::uint64_t>(p) + k4GiB - 1) & ~(k4GiB - 1);
}

// Bytes of memory the arena's file holds right now.
inline std::uint64_t resident_bytes(const Arena& a) {
  struct stat st {};
  EXPECT_EQ(fstat(a.fd(), &st), 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

inline Arena make_arena(std::uint32_t pages, std::uint32_t flags = arena_flags::mmapable,
                        std::uint64_t map_extra = 0) {
  ArenaOptions o;
  o.max_entries = pages;
  o.map_flags = flags;
  o.map_extra = map_extra;
  auto a = Arena::create(o);
  if (!a) ADD_FAILURE() << a.error().message;
  return std::move(*a);
}

// A name no other test process uses; every name a test creates ends in its pid,
// so the suite can check it left none of its own behind in /dev/shm.
inline std::string unique_name(const std::string& tag) {
  return tag + "." + std::to_string(getpid());
}
inline bool name_exists(const std::string& name) {
  struct stat st {};
  return stat(("/dev/shm/scxkit-arena." + name).c_str(), &st) == 0;
}

// Creates an arena on `backend`. A kernel arena that cannot exist here (not
// root, no BPF arenas) comes back as Errc::unsupported with the reason.
inline Result<Arena> create_on(ArenaBackend backend, ArenaOptions o) {
  o.backend = backend;
  return Arena::create(o);
}

// In a forked child: a kernel arena's user view is not inherited across
// fork() (measured on 6.18; the emulation's views are), so map it again at
// its address from the inherited map descriptor. Returns false on failure.
inline bool remap_after_fork(const Arena& a) {
  if (a.backend() != ArenaBackend::kernel) return true;
  const std::size_t size = std::size_t{a.max_entries()} * kPageSize;
  void* want = reinterpret_cast<void*>(a.user_vm_start());
  void* p = mmap(want, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, a.fd(), 0);
  return p == want;
}

#ifdef SCXKIT_ARENA_PEER
// Starts the arena_peer helper: a fresh process (a fork would inherit our
// views); `keep_fd` stays open in it.
inline pid_t spawn_peer(const std::vector<std::string>& args, int keep_fd = -1) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a test killed on timeout
    if (keep_fd >= 0) fcntl(keep_fd, F_SETFD, 0);
    std::vector<char*> argv{const_cast<char*>(SCXKIT_ARENA_PEER)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}
#endif

// Waits for `pid` at most `deadline_ms`; past that it is SIGKILLed, reaped,
// and the result is -1.
inline int wait_for(pid_t pid, int deadline_ms) {
  for (int waited = 0;; waited += 5) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -2;
    if (waited >= deadline_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    const timespec ts{0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
}

inline int exit_code(int status) {
  if (status < 0) return status;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#ifdef SCXKIT_ARENA_PEER
// Runs the peer program to its end (at most 60 s); its exit code.
inline int run_peer(const std::vector<std::string>& args, int keep_fd = -1) {
  return exit_code(wait_for(spawn_peer(args, keep_fd), 60'000));
}
#endif

// Runs fn() in a forked child and returns its wait status (bounded: the
// child is killed after 30 s).
template <class Fn>
int in_child(Fn fn) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace testing_support
}  // namespace scxkit::internal
