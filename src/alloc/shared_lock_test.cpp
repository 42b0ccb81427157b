// The arena allocator lock between processes: held by a live process it
// waits (up to its deadline), held by a dead one it is taken over — also when
// the dead holder's pid has been handed to another process.
#include "alloc/shared_lock.hpp"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include <gtest/gtest.h>

#include "alloc/test_support.hpp"

namespace scxkit {
namespace {

using internal::current_process_id;
using internal::LockTaken;
using internal::shared_lock;

// A lock word in memory shared with forked children.
struct SharedWord {
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ~SharedWord() { munmap(mem, 4096); }
  std::atomic<std::uint64_t>& word() { return *static_cast<std::atomic<std::uint64_t>*>(mem); }
};

// A child that takes the lock and exits holding it; 0 once it is reaped.
int die_holding(std::atomic<std::uint64_t>& word) {
  const pid_t holder = fork();
  if (holder == 0) _exit(shared_lock(word, current_process_id()) ? 0 : 1);
  return testing_support::wait_exit(holder, 30) == 0 ? holder : -1;
}

TEST(SharedLock, ALiveHolderKeepsItUntilTheDeadline) {
  SharedWord w;
  ASSERT_NE(w.mem, MAP_FAILED);
  int release[2];
  ASSERT_EQ(pipe(release), 0);
  int locked[2];
  ASSERT_EQ(pipe(locked), 0);
  const pid_t holder = fork();
  if (holder == 0) {
    close(release[1]);
    if (!shared_lock(w.word(), current_process_id())) _exit(1);
    char c = 'l';
    if (write(locked[1], &c, 1) != 1) _exit(2);
    alarm(60);
    while (read(release[0], &c, 1) > 0) {
    }
    internal::shared_unlock(w.word());
    _exit(0);
  }
  close(release[0]);
  char c;
  ASSERT_EQ(read(locked[0], &c, 1), 1);
  auto r = shared_lock(w.word(), current_process_id(), 200'000'000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::busy);
  close(release[1]);
  EXPECT_EQ(testing_support::wait_exit(holder, 30), 0);
  auto after = shared_lock(w.word(), current_process_id(), 10'000'000'000ull);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, LockTaken::clean);
}

TEST(SharedLock, ADeadHoldersLockIsTakenOverAndSaysSo) {
  SharedWord w;
  ASSERT_NE(w.mem, MAP_FAILED);
  ASSERT_GT(die_holding(w.word()), 0);
  auto r = shared_lock(w.word(), current_process_id(), 10'000'000'000ull);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, LockTaken::from_dead_holder);
}

// Runs as pid 1 of a private pid namespace: the holder dies, a stranger gets
// its pid, and the lock must still be taken over at once.
int take_over_after_pid_reuse() {
  SharedWord w;
  if (w.mem == MAP_FAILED) return 21;
  const pid_t dead = die_holding(w.word());
  if (dead <= 0) return 22;
  if (!testing_support::reuse_pid_next(dead)) return testing_support::kNoPrivateNamespaces;
  int release[2];
  if (pipe(release) != 0) return 23;
  const pid_t bystander = testing_support::start_bystander(release);
  close(release[0]);
  int rc = 0;
  if (bystander != dead) {
    rc = testing_support::kPidNotReused;
  } else if (auto r = shared_lock(w.word(), current_process_id(), 5'000'000'000ull); !r) {
    rc = 24;  // busy: the stranger kept the dead holder's lock
  } else if (*r != LockTaken::from_dead_holder) {
    rc = 25;
  }
  close(release[1]);
  if (testing_support::wait_exit(bystander, 10) != 0 && rc == 0) rc = 26;
  return rc;
}

TEST(SharedLock, ADeadHoldersPidTakenByAStrangerDoesNotKeepTheLock) {
  const int rc = testing_support::in_private_pid_namespace(take_over_after_pid_reuse);
  if (rc == testing_support::kNoPrivateNamespaces) {
    GTEST_SKIP() << "needs root for a private pid namespace, its own /proc and ns_last_pid";
  }
  EXPECT_NE(rc, testing_support::kPidNotReused) << "the stranger did not get the dead holder's pid";
  EXPECT_EQ(rc, 0) << "24: the lock stayed held by the stranger with the dead holder's pid";
}

}  // namespace
}  // namespace scxkit
