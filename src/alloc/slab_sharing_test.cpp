// Several processes on one slab heap, with a real second process
// (tests/helpers/slab_peer.cpp) opening the arena by name.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "alloc/stress.hpp"
#include "alloc/test_support.hpp"
#include "scxkit/slab.hpp"

namespace scxkit {
namespace {

pid_t spawn_peer(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(SCXKIT_SLAB_PEER)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// The peer's exit code, or 128 + signal; killed after `seconds`.
int wait_peer(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Shared {
  std::string name = fmt::format("slabtest.{}.{}", getpid(), counter++);
  Arena arena;
  SlabHeap heap;
  static inline int counter = 0;

  explicit Shared(std::uint32_t pages)
      : arena(testing_support::created(Arena::create({.max_entries = pages, .name = name}))),
        heap(testing_support::created(SlabHeap::create(arena))) {}
  std::vector<std::string> args(const char* mode, std::uint32_t block) const {
    return {mode, name, fmt::format("{:x}", heap.root_offset()), fmt::format("{:x}", block)};
  }
};

#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
constexpr const char* kCrossProcessUnderTsan =
    "ThreadSanitizer cannot see the happens-before edges the other process's atomics make in "
    "the shared arena, so it reports its frees as races";

TEST(SlabSharing, TwoProcessesFreeEachOthersObjects) {
  Shared s(16384);
  constexpr std::uint32_t kCount = 3000;
  auto block = s.heap.alloc(4 * (kCount + 1));
  ASSERT_TRUE(block);
  auto* b = static_cast<std::uint32_t*>(*block);
  b[0] = kCount;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    auto p = s.heap.alloc(8 + (i * 24) % 3000);
    ASSERT_TRUE(p);
    const std::uint32_t off = Arena::offset_of_user(*p);
    auto* w = static_cast<std::uint32_t*>(*p);
    for (std::size_t k = 0; k < *s.heap.usable_size(w) / 4; ++k) w[k] = off ^ 0x5a5a5a5a;
    b[1 + i] = off;
  }
  const std::uint64_t slabs_before = s.heap.stats().slabs;
  ASSERT_EQ(wait_peer(spawn_peer(s.args("swap", Arena::offset_of_user(b))), 60), 0);
  // The peer freed ours (its frees reached our slabs) and left its own.
  for (std::uint32_t i = 0; i < kCount; ++i) {
    auto* w = static_cast<std::uint32_t*>(s.arena.user_addr(b[1 + i]));
    for (std::size_t k = 0; k < *s.heap.usable_size(w) / 4; ++k) {
      ASSERT_EQ(w[k], b[1 + i] ^ 0x5a5a5a5a);
    }
    ASSERT_TRUE(s.heap.free(w));
  }
  ASSERT_TRUE(s.heap.free(b));
  EXPECT_EQ(s.heap.stats().bad_frees, 0u);
  EXPECT_GT(slabs_before, 1u);
  // Everything is free again: only our thread's current slabs and the
  // classes' kept empty ones remain.
  EXPECT_LE(s.heap.stats().slabs - s.heap.stats().empty_slabs_kept, 32u);
  EXPECT_EQ(s.heap.stats().large_allocations, 0u);
}

TEST(SlabSharing, ProcessesStressOneHeapTogetherWithoutCorruption) {
  if (kThreadSanitizer) GTEST_SKIP() << kCrossProcessUnderTsan;
  Shared s(65536);
  auto block = internal::stress_setup(s.heap, 2048);
  ASSERT_TRUE(block);
  auto args = s.args("stress", *block);
  args.insert(args.end(), {"2", "1.5", "11", "1"});
  const pid_t peer = spawn_peer(args);
  internal::stress_run(s.heap, internal::stress_shared(s.heap, *block), 2, 1.5, 11, 0);
  ASSERT_EQ(wait_peer(peer, 60), 0);
  const internal::StressReport r = internal::stress_finish(s.heap, *block);
  EXPECT_GT(r.ops, 1000u);
  EXPECT_EQ(r.corruptions, 0u);
  EXPECT_EQ(s.heap.stats().bad_frees, 0u);
}

TEST(SlabSharing, AProcessKilledMidOperationLeavesTheHeapWhole) {
  if (kThreadSanitizer) GTEST_SKIP() << kCrossProcessUnderTsan;
  Shared s(65536);
  auto block = internal::stress_setup(s.heap, 2048);
  ASSERT_TRUE(block);
  internal::StressShared* shared = internal::stress_shared(s.heap, *block);
  auto args = s.args("stress", *block);
  args.insert(args.end(), {"2", "60", "5", "1"});
  const pid_t peer = spawn_peer(args);
  // Both processes hand objects to each other; then the peer dies in the
  // middle of whatever it was doing.
  // Reaped at once, as a supervisor would: until then the arena counts the
  // zombie as attached and every page free waits for it.
  std::atomic<int> peer_status{0};
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    kill(peer, SIGKILL);
    peer_status = wait_peer(peer, 10);
  });
  internal::stress_run(s.heap, shared, 2, 1.2, 5, 0);
  killer.join();
  ASSERT_EQ(peer_status.load(), 128 + SIGKILL);
  auto rec = s.heap.recover();
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_GE(rec->dead_threads, 1u);  // its main thread may not have touched the heap
  // The heap serves the living as before, and what the peer put in the
  // slots checks out and frees cleanly.
  internal::stress_run(s.heap, shared, 2, 0.8, 6, 0);
  const internal::StressReport r = internal::stress_finish(s.heap, *block);
  EXPECT_EQ(r.corruptions, 0u);
  EXPECT_EQ(s.heap.stats().bad_frees, 0u);
  // Everything in the slots is freed now, so the only memory still held is
  // what the peer's objects in flight keep: at most one object per peer
  // thread, so at most one slab or large allocation each.
  const SlabStats st = s.heap.stats();
  EXPECT_LE(st.slabs - st.empty_slabs_kept + st.large_allocations, 2u)
      << rec->slabs_recovered << " slabs recovered";
  EXPECT_EQ(st.objects_of_dead_threads, rec->objects_in_use);
  // A second recovery finds nothing more.
  auto again = s.heap.recover();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->dead_threads, 0u);
}

}  // namespace
}  // namespace scxkit
