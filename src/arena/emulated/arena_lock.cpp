// The arena lock: a robust, process-shared mutex in the control block, and
// the call gate that keeps a handle alive while a call runs. A process that
// dies holding the lock leaves its unfinished slot transitions to the next
// holder, which finishes them (EOWNERDEAD).
#include <linux/futex.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "arena/emulated/arena_impl.hpp"
#include "arena/os.hpp"

namespace scxkit::internal {
namespace {

// A sleeping lock call waits in slices of kLockSliceNs, each ending with a
// fresh try: a waiter SIGKILLed just as the holder's unlock woke it takes that
// wake-up with it (an unlock wakes one sleeper), and without slices the other
// sleepers would sleep on with the lock free (seen as stalls of minutes when
// a process was killed mid-operation). Holds are bounded (kMaxHoldNs), so a
// lock still held after kLockDeadlineNs has a stuck holder.
constexpr std::uint64_t kLockSliceNs = 50'000'000;
constexpr std::uint64_t kLockDeadlineNs = 30'000'000'000;

}  // namespace

Result<CallGate::Pass> ArenaImpl::enter() const {
  CallGate::Pass pass = gate_.enter();
  if (!pass) {
    return make_error(Errc::invalid_argument,
                      "the arena was torn down in this process; create or open it again");
  }
  return pass;
}

Result<ArenaImpl::Lock> ArenaImpl::lock(bool may_sleep) const {
  auto pass = enter();
  if (!pass) return tl::unexpected(pass.error());
  int rc = pthread_mutex_trylock(&ctl_->lock);
  if (rc == EBUSY && may_sleep) {
    const std::uint64_t deadline = os::monotonic_ns() + kLockDeadlineNs;
    for (std::uint64_t now = os::monotonic_ns(); rc == EBUSY || rc == ETIMEDOUT;
         now = os::monotonic_ns()) {
      if (now >= deadline) {
        return make_error(Errc::busy, fmt::format("the arena lock stayed held for over {} s; "
                                                  "the process holding it is stuck",
                                                  kLockDeadlineNs / 1'000'000'000));
      }
      rc = os::mutex_lock_for(&ctl_->lock, std::min(deadline - now, kLockSliceNs));
    }
  }
  if (rc == EOWNERDEAD) {
    // A process died holding the lock, maybe halfway through a change.
    repair_after_owner_death();
    rc = pthread_mutex_consistent(&ctl_->lock);
    if (rc != 0) {
      pthread_mutex_unlock(&ctl_->lock);
      return os_error("repairing the arena lock after its holder died", rc);
    }
  }
  if (rc == EBUSY) {
    return make_error(Errc::busy,
                      "the arena lock is held by another thread; "
                      "retry, or use the sleeping call where blocking is allowed");
  }
  if (rc != 0) return os_error("locking the arena", rc);
  ctl_->lock_acquisitions.fetch_add(1);
  return Lock(&ctl_->lock, std::move(*pass));
}

bool ArenaImpl::lock_has_waiters() const {
  // glibc's robust mutex word is the kernel's robust-futex word: owner tid
  // plus FUTEX_WAITERS while a thread sleeps on it. Kept by the kernel and
  // cleared by the next unlock, it cannot leak when a waiter is killed, as
  // a counter of our own would.
  const auto word = std::atomic_ref<int>(ctl_->lock.__data.__lock).load();
  return (static_cast<unsigned>(word) & FUTEX_WAITERS) != 0;
}

void ArenaImpl::let_waiters_in() const {
  // Called with the lock released after a hold that saw sleepers: wait until
  // one has had its turn, for at most a couple of milliseconds (it may have
  // given up or been killed meanwhile).
  const std::uint64_t seen = ctl_->lock_acquisitions.load();
  const std::uint64_t deadline = os::monotonic_ns() + 2'000'000;
  while (ctl_->lock_acquisitions.load() == seen && os::monotonic_ns() < deadline) {
    os::yield_cpu();
  }
}

void ArenaImpl::repair_after_owner_death() const {
  // Transitions the dead process made under the lock will never finish:
  // finish them its way (an unfinished allocation or free leaves the page
  // free). Whatever its page holds is punched out; if that fails the page
  // may keep data, which is harmless: an allocation punches its pages again
  // and refuses them when it cannot (page_alloc.cpp).
  pages_->repair([&](std::uint32_t abs) {
    (void)os::punch_hole(file_.fd(), std::uint64_t{abs} * kPageSize, kPageSize);
  });
}

}  // namespace scxkit::internal
