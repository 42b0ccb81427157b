// Kernel-view fault recovery with the scratch page (the 2026 direct-access
// model), on the emulated arena.
//
// The kernel maps one shared scratch page into every empty slot a stray
// access hits. Mapping one page at many addresses needs one VMA each, which
// dies near vm.max_map_count (65530). Here a stray access instead backs that
// slot's own page of the arena file and lifts the guard marker over it: no
// VMA. To keep memory bounded, each arena remembers the last
// kScratchResident scratch pages it backed in this process; older ones are
// guarded again and their backing punched out. Their slots stay scratch: a
// later stray access there is recovered again (silently, as it would not
// have faulted in the kernel), and the user view never lazily allocates over
// them.
//
// Nothing here leaves a slot in a transition state: installing scratch is one
// CAS, and an eviction excludes an allocation of the same slot with a lock
// the kernel drops if the evicting process dies.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "arena/emulated/arena_impl.hpp"
#include "arena/os.hpp"
#include "arena/program_context.hpp"

namespace scxkit::internal {

namespace {

// The last fault this thread reported, so the retry of one access after a
// transition is not reported twice.
thread_local std::uintptr_t tls_last_ip __attribute__((tls_model("initial-exec"))) = 0;
thread_local std::uintptr_t tls_last_page __attribute__((tls_model("initial-exec"))) = 0;

// snprintf is not async-signal-safe; this is all the formatting a record needs.
class Line {
 public:
  Line& text(const char* s) {
    while (*s != '\0' && n_ < sizeof(buf_)) buf_[n_++] = *s++;
    return *this;
  }
  Line& hex(std::uint64_t v) {
    text("0x");
    char digits[16];
    int k = 0;
    do {
      digits[k++] = "0123456789abcdef"[v & 0xf];
      v >>= 4;
    } while (v != 0);
    while (k > 0 && n_ < sizeof(buf_)) buf_[n_++] = digits[--k];
    return *this;
  }
  Line& dec(std::uint64_t v) {
    char digits[20];
    int k = 0;
    do {
      digits[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k > 0 && n_ < sizeof(buf_)) buf_[n_++] = digits[--k];
    return *this;
  }
  const char* data() const { return buf_; }
  std::size_t size() const { return n_; }

 private:
  char buf_[160];
  std::size_t n_ = 0;
};

}  // namespace

void ArenaImpl::evict_scratch(std::uint32_t abs) noexcept {
  // Busy: an allocation is replacing it (or another eviction runs); skip.
  if (file_.lock_slots_for_eviction(abs, 1) != 0) return;
  // Evicting is only about memory: if the page cannot be guarded first, it
  // stays backed (a stray access keeps reading it, as in the kernel); if it
  // cannot be punched, its memory stays until the slot is allocated (which
  // punches it again) or the arena goes.
  if (slot(abs).load() == kSlotScratch && guard(View::kern, abs, 1) == 0) {
    (void)os::punch_hole(file_.fd(), std::uint64_t{abs} * kPageSize, kPageSize);
  }
  file_.unlock_slots(true, abs, 1);
}

bool ArenaImpl::map_scratch(std::uint32_t abs) noexcept {
  // If an allocation replaces the slot meanwhile, this backing is punched
  // out or already is the allocation's zeroed page: either is harmless. No
  // backing (out of memory): the retried access is a missing-page event,
  // which guards the page again and the next fault comes back here.
  (void)back(abs, 1);
  if (!unguard(View::kern, abs)) return false;  // it would fault forever
  const std::uint64_t pos = scratch_ring_pos_.fetch_add(1);
  const std::uint32_t old = scratch_ring_[pos % kScratchResident].exchange(abs + 1);
  if (old != 0 && old != abs + 1) evict_scratch(old - 1);
  return true;
}

bool ArenaImpl::claim_kern_fault(std::uint32_t abs, const FaultInfo& fault) noexcept {
  auto& s = slot(abs);
  for (;;) {
    std::uint32_t seen = s.load();
    if (seen == kSlotAllocated || changing_under_lock(seen)) {
      // A stale guard; the retried access maps the page or waits in the view
      // server for the change to land. One that cannot be lifted would fault
      // forever: not ours to retry.
      return unguard(View::kern, abs);
    }
    // No page here. Only code acting for a program that uses this arena is recovered.
    const ProgramContext ctx = current_program_context();
    if (ctx.program == nullptr || ctx.arena != this) return false;

    const std::uintptr_t page = fault.addr & ~std::uintptr_t{kPageSize - 1};
    if (fault.ip != tls_last_ip || page != tls_last_page) {
      tls_last_ip = fault.ip;
      tls_last_page = page;
      Line line;
      line.text("arena violation: ")
          .text(fault.write ? "WRITE" : "READ")
          .text(" arena offset ")
          .hex(fault.addr - kern_vm_start_)
          .text(" ip ")
          .hex(fault.ip)
          .text(" tid ")
          .dec(static_cast<std::uint64_t>(syscall(SYS_gettid)))
          .text("\n");
      report_to_program(ctx.program, line.data(), line.size());
    }
    // Install iff the slot is still what we saw: empty, reserved, or scratch
    // whose backing was evicted.
    if (seen != kSlotScratch) {
      if (!pages_->install_scratch(abs, seen)) continue;
      // This process's user view faults on it ("scratch page there: SIGSEGV");
      // where the marker cannot be set (out of memory), it reads the scratch
      // page instead, as other processes' user views do (docs/ARENA.md).
      if (in_user_view(abs)) (void)guard(View::user, abs, 1);
    }
    return map_scratch(abs);
  }
}

}  // namespace scxkit::internal
