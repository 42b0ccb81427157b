// Several processes on one slab heap, with a real second process
// (tests/helpers/slab_peer.cpp) opening the arena: an emulated one by name, a
// kernel one by map id.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "alloc/stress.hpp"
#include "alloc/test_support.hpp"
#include "scxkit/slab.hpp"

namespace scxkit {
namespace {

// Starts slab_peer; its stdout goes to `stdout_fd` when given.
pid_t spawn_peer(const std::vector<std::string>& args, int stdout_fd = -1) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a test killed on timeout
    if (stdout_fd >= 0) dup2(stdout_fd, 1);
    std::vector<char*> argv{const_cast<char*>(SCXKIT_SLAB_PEER)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Whether `fd` delivers exactly `text` within 30 s.
bool said(int fd, std::string_view text) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (got.size() < text.size()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) != 1) return false;
    char buf[64];
    const ssize_t n = read(fd, buf, std::min(sizeof(buf), text.size() - got.size()));
    if (n <= 0) return false;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got == text;
}

// An arena another process can open (an emulated one by name, a kernel one
// by map id), with a heap in it.
struct Shared {
  std::string name;  // emulated: the arena's name; kernel: none (opened by map id)
  Arena arena;
  SlabHeap heap;
  static inline int counter = 0;

  Shared(ArenaBackend backend, std::uint32_t pages, std::string arena_name = fresh_name())
      : name(backend == ArenaBackend::emulated ? std::move(arena_name) : ""),
        arena(testing_support::created(
            Arena::create({.max_entries = pages, .name = name, .backend = backend}))),
        heap(testing_support::created(SlabHeap::create(arena))) {}
  static std::string fresh_name() { return fmt::format("slabtest.{}.{}", getpid(), counter++); }
  // How slab_peer opens the arena.
  std::string spec() const {
    return name.empty() ? fmt::format("map-id:{}", testing_support::created(arena.map_id())) : name;
  }
  std::vector<std::string> args(const char* mode, std::uint32_t block) const {
    return {mode, spec(), fmt::format("{:x}", heap.root_offset()), fmt::format("{:x}", block)};
  }
};

using SlabSharing = testing_support::OnEachBackend;

using testing_support::kThreadSanitizer;
constexpr const char* kCrossProcessUnderTsan =
    "ThreadSanitizer cannot see the happens-before edges the other process's atomics make in "
    "the shared arena, so it reports its frees as races";

TEST_P(SlabSharing, TwoProcessesFreeEachOthersObjects) {
  Shared s(GetParam(), 16384);
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
  ASSERT_EQ(testing_support::wait_exit(spawn_peer(s.args("swap", Arena::offset_of_user(b))), 60),
            0);
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

TEST_P(SlabSharing, ProcessesStressOneHeapTogetherWithoutCorruption) {
  if (kThreadSanitizer) GTEST_SKIP() << kCrossProcessUnderTsan;
  Shared s(GetParam(), 65536);
  auto block = internal::stress_setup(s.heap, 2048);
  ASSERT_TRUE(block);
  auto args = s.args("stress", *block);
  args.insert(args.end(), {"2", "1.5", "11", "1"});
  const pid_t peer = spawn_peer(args);
  internal::stress_run(s.heap, internal::stress_shared(s.heap, *block), 2, 1.5, 11, 0);
  ASSERT_EQ(testing_support::wait_exit(peer, 60), 0);
  const internal::StressReport r = internal::stress_finish(s.heap, *block);
  EXPECT_GT(r.ops, 1000u);
  EXPECT_EQ(r.corruptions, 0u);
  EXPECT_EQ(s.heap.stats().bad_frees, 0u);
}

TEST_P(SlabSharing, AProcessKilledMidOperationLeavesTheHeapWhole) {
  if (kThreadSanitizer) GTEST_SKIP() << kCrossProcessUnderTsan;
  Shared s(GetParam(), 65536);
  auto block = internal::stress_setup(s.heap, 2048);
  ASSERT_TRUE(block);
  internal::StressShared* shared = internal::stress_shared(s.heap, *block);
  auto args = s.args("stress", *block);
  args.insert(args.end(), {"2", "60", "5", "1"});
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t peer = spawn_peer(args, ready[1]);
  close(ready[1]);
  // Opening a kernel arena loads a BPF program: the clock starts once the
  // peer is attached.
  const bool attached = said(ready[0], "ready\n");
  close(ready[0]);
  if (!attached) testing_support::wait_exit(peer, 0);  // kills and reaps it
  ASSERT_TRUE(attached) << "the peer did not attach within 30 s";
  // Both processes hand objects to each other; then the peer dies in the
  // middle of whatever it was doing.
  // Reaped at once, as a supervisor would: until then the arena counts the
  // zombie as attached and every page free waits for it.
  std::atomic<int> peer_status{0};
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    kill(peer, SIGKILL);
    peer_status = testing_support::wait_exit(peer, 10);
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

SCXKIT_ON_EACH_BACKEND(SlabSharing);

// Runs as pid 1 of a private pid namespace: a peer attached to the heap is
// killed, its pid goes to an unrelated process, and recover() must still
// find the peer's thread record dead. Returns 0 when it does.
int recover_after_pid_reuse(const std::string& name) {
  Shared s(ArenaBackend::emulated, 4096, name);
  auto block = s.heap.alloc(8);
  if (!block) return 21;
  int ready[2], release[2];
  if (pipe(ready) != 0 || pipe(release) != 0) return 22;
  const pid_t peer = spawn_peer(s.args("hold", Arena::offset_of_user(*block)), ready[1]);
  close(ready[1]);
  if (!said(ready[0], "ready\nheld\n")) return 23;
  kill(peer, SIGKILL);
  if (testing_support::wait_exit(peer, 10) != 128 + SIGKILL) return 24;
  if (!testing_support::reuse_pid_next(peer)) return testing_support::kNoPrivateNamespaces;
  const pid_t bystander = testing_support::start_bystander(release);
  close(release[0]);
  int rc = 0;
  if (bystander != peer) {
    rc = testing_support::kPidNotReused;
  } else if (auto rec = s.heap.recover(); !rec) {
    rc = 25;
  } else if (rec->dead_threads != 1) {
    rc = 26;  // the stranger with the peer's pid made the peer look alive
  } else if (rec->objects_in_use != 1) {
    rc = 27;  // the object the peer held is counted as lost
  }
  close(release[1]);
  if (testing_support::wait_exit(bystander, 10) != 0 && rc == 0) rc = 28;
  return rc;
}

TEST(SlabPidReuse, ADeadPeersPidTakenByAStrangerDoesNotHideItsDeath) {
  if (kThreadSanitizer) GTEST_SKIP() << kCrossProcessUnderTsan;
  const std::string name = Shared::fresh_name();  // our pid: the namespace's init is pid 1
  const int rc =
      testing_support::in_private_pid_namespace([&] { return recover_after_pid_reuse(name); });
  if (rc == testing_support::kNoPrivateNamespaces) {
    GTEST_SKIP() << "needs root for a private pid namespace, its own /proc and ns_last_pid";
  }
  EXPECT_NE(rc, testing_support::kPidNotReused) << "the stranger did not get the dead peer's pid";
  EXPECT_EQ(rc, 0) << "26: recover() took the stranger for the dead peer";
}

}  // namespace
}  // namespace scxkit
