// The kernel's fault rules for the arena's views, in two places:
//
//   * a missing-page event (view server thread, may take the arena lock):
//     the file has no page there — never allocated, freed (punched) by any
//     process, or scratch whose backing was evicted;
//   * a guard marker fault (signal handler, async-signal-safe): this process
//     guarded the page earlier so that an access faults with SIGSEGV.
//
// Guard markers are installed only where an access must fault: the user view
// of a page that is not there under segv_on_fault or that holds scratch, and
// the kernel view around an access to a page that is not allocated (a stray
// access, recovered with scratch inside a program scope, a crash outside).
// A stale guard over a page that is allocated meanwhile costs one fault.
#include <cerrno>

#include <algorithm>

#include "arena/emulated/arena_impl.hpp"
#include "arena/os.hpp"

namespace scxkit::internal {

namespace {
// Guarding the kernel view around a stray access, this many pages at once,
// sends the next stray accesses nearby straight to the signal handler.
constexpr std::uint32_t kKernGuardWindow = 512;
// A guard marker needs page tables; under memory pressure the call fails with
// ENOMEM and is worth a few more tries.
constexpr int kGuardTries = 8;
}  // namespace

int ArenaImpl::back(std::uint32_t abs, std::uint32_t count) noexcept {
  return os::instantiate(file_.fd(), std::uint64_t{abs} * kPageSize,
                         std::uint64_t{count} * kPageSize);
}

int ArenaImpl::guard(View v, std::uint32_t abs, std::uint32_t count) noexcept {
  int e = 0;
  for (int i = 0; i < kGuardTries; ++i) {
    e = os::guard_install(page_addr(v, abs), std::size_t{count} * kPageSize);
    if (e != ENOMEM) return e;
    os::yield_cpu();
  }
  return e;
}

bool ArenaImpl::unguard(View v, std::uint32_t abs) noexcept {
  return os::guard_remove(page_addr(v, abs), kPageSize) == 0;
}

void ArenaImpl::resolve_missing(std::uintptr_t addr) noexcept {
  auto guard = lock(true);
  if (!guard) return;  // torn down: the server stops right after
  if (addr >= user_vm_start_ && addr < user_vm_end()) {
    resolve_missing_user(first_page_ +
                         static_cast<std::uint32_t>((addr - user_vm_start_) / kPageSize));
  } else if (addr >= kern_vm_start_ && addr < kern_vm_start_ + kKernMappedSize) {
    resolve_missing_kern(static_cast<std::uint32_t>((addr - kern_vm_start_) / kPageSize));
  }
}

// Where a page cannot be given or guarded (the OS is out of memory), nothing
// changes: the woken thread retries its access and comes back here, as a
// kernel page fault retries until memory is found.
void ArenaImpl::resolve_missing_user(std::uint32_t abs) noexcept {
  const std::uint32_t seen = slot(abs).load();
  if (seen == kSlotAllocated) {  // lazily allocated elsewhere a moment ago
    (void)back(abs, 1);
    return;
  }
  // "Scratch page there: SIGSEGV"; "none and SEGV_ON_FAULT: SIGSEGV".
  if (seen == kSlotScratch || (map_flags_ & arena_flags::segv_on_fault) != 0) {
    (void)guard(View::user, abs, 1);
    return;
  }
  // Empty or reserved: allocate a zeroed page lazily, like the kernel.
  if (back(abs, 1) == 0) pages_->allocate_lazily(abs, seen);
}

void ArenaImpl::resolve_missing_kern(std::uint32_t abs) noexcept {
  if (slot(abs).load() == kSlotAllocated) {
    (void)back(abs, 1);
    return;
  }
  // A stray access: let it fault, and its neighbours with no page too
  // (scratch pages keep their backing mapped; an evicted one faults alone).
  // Only the page itself must be guarded; the neighbours save later trips.
  if (guard(View::kern, abs, 1) != 0) return;
  const std::uint32_t first = abs / kKernGuardWindow * kKernGuardWindow;
  const std::uint32_t end = std::min(first + kKernGuardWindow, kSlotCount);
  const auto unbacked = [&](std::uint32_t p) {
    const std::uint32_t s = slot(p).load();
    return s == kSlotEmpty || s == kSlotReserved;
  };
  for_each_run(first, end, unbacked,
               [&](std::uint32_t p, std::uint32_t n) { (void)guard(View::kern, p, n); });
}

bool ArenaImpl::claim_user_fault(std::uint32_t abs) noexcept {
  const std::uint32_t seen = slot(abs).load();
  // The fault stands for a page that must fault: scratch, or none under
  // segv_on_fault. Anything else retries without the guard (the view server
  // decides if the page is missing).
  if (seen == kSlotScratch) return false;
  if ((map_flags_ & arena_flags::segv_on_fault) != 0 && seen != kSlotAllocated &&
      !changing_under_lock(seen)) {
    return false;
  }
  // A marker that cannot be lifted would fault forever: not ours to retry.
  return unguard(View::user, abs);
}

bool ArenaImpl::claim_fault(const FaultInfo& fault) noexcept {
  if (fault.addr >= user_vm_start_ && fault.addr < user_vm_end()) {
    return claim_user_fault(first_page_ +
                            static_cast<std::uint32_t>((fault.addr - user_vm_start_) / kPageSize));
  }
  if (fault.addr >= kern_vm_start_ && fault.addr < kern_vm_start_ + kKernMappedSize) {
    return claim_kern_fault(static_cast<std::uint32_t>((fault.addr - kern_vm_start_) / kPageSize),
                            fault);
  }
  return false;
}

}  // namespace scxkit::internal
