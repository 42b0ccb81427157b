// alloc_pages, free_pages, reserve_pages on the emulated arena: the page table
// (arena/page_table.hpp) decides, this file makes the arena's memory file
// follow. Every OS call's failure leaves the slots as they were: an
// allocation whose pages cannot be cleared or given is refused, never handed
// out dirty; a page that cannot be taken away stays allocated.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "arena/emulated/arena_impl.hpp"
#include "arena/os.hpp"
#include "arena/page_args.hpp"

namespace scxkit::internal {

namespace {

// At most this many pages per step of a free, so a huge free hands the lock
// over often (the step is also bounded in time, kMaxHoldNs).
constexpr std::uint32_t kChunkPages = 128;

}  // namespace

Result<std::uint64_t> ArenaImpl::alloc(std::uint64_t addr, std::uint32_t count, int node,
                                       bool may_sleep) {
  const UserRange range{user_vm_start_, max_entries_};
  if (auto ok = check_alloc_args(range, count, node); !ok) return tl::unexpected(ok.error());
  std::uint32_t want = 0;
  if (addr != 0) {
    auto p = page_index(range, addr, count, "alloc_pages");
    if (!p) return tl::unexpected(p.error());
    want = *p;
  }
  auto guard = lock(may_sleep);
  if (!guard) return tl::unexpected(guard.error());

  const auto claimed = addr != 0 ? pages_->claim_at(want, count) : pages_->claim_best_fit(count);
  if (!claimed) {
    if (addr != 0) {
      return make_error(
          Errc::busy, fmt::format("alloc_pages: pages 0x{:x}..+{} are not all free", addr, count));
    }
    return make_error(Errc::no_space,
                      fmt::format("alloc_pages: no run of {} free pages left in the arena", count));
  }
  const std::uint32_t pgoff = *claimed;
  if (auto r = give_fresh_pages(pages_->abs_page(pgoff), count); !r) {
    pages_->abandon(pgoff, count);
    return tl::unexpected(r.error());
  }
  return user_vm_start_ + std::uint64_t{pgoff} * kPageSize;
}

Result<void> ArenaImpl::give_fresh_pages(std::uint32_t first, std::uint32_t count) {
  const std::uint64_t off = std::uint64_t{first} * kPageSize;
  const std::uint64_t len = std::uint64_t{count} * kPageSize;
  const auto what = [&](std::string_view doing, int err, std::string_view hint = "") {
    return fmt::format(
        "alloc_pages: {} {} page(s) at arena offset 0x{:x} failed ({}{}); nothing "
        "was allocated",
        doing, count, off, std::strerror(err), hint);
  };
  // Whatever the file holds there (scratch, a stray late write) goes: the
  // range is punched out (which also zaps it in every process), then given
  // fresh zeroed pages so every process's first access is an ordinary minor
  // fault. In this process a stray access in flight meets a guard over the
  // scratch it is replacing and waits for the slot to settle; a scratch
  // eviction in flight finishes first (the slot lock).
  int err = 0;
  for_each_run(
      first, first + count, [&](std::uint32_t p) { return slot(p).load() == kSlotClaimedScratch; },
      [&](std::uint32_t p, std::uint32_t n) {
        if (err == 0) err = guard(View::kern, p, n);
      });
  if (err != 0) return make_error(Errc::system_error, what("guarding the scratch of", err));
  if (int e = file_.lock_slots_for_allocation(first, count); e != 0) {
    return make_error(Errc::system_error, what("locking the slots of", e));
  }
  if (int e = os::punch_hole(file_.fd(), off, len); e != 0) {
    // The old contents may still be there: these pages are not handed out.
    file_.unlock_slots(false, first, count);
    return tl::unexpected(Error{Errc::system_error, what("clearing", e), e});
  }
  if (int e = back(first, count); e != 0) {
    // Take back what was given, so no free slot keeps a page behind it.
    (void)os::punch_hole(file_.fd(), off, len);
    file_.unlock_slots(false, first, count);
    return tl::unexpected(Error{e == ENOSPC ? Errc::no_space : Errc::system_error,
                                what("backing", e, ": /dev/shm or memory full?"), e});
  }
  pages_->publish(first - first_page_, count);
  file_.unlock_slots(false, first, count);
  // A marker that stays (the removal can only fail for lack of memory) is a
  // stale guard over an allocated page: its first access costs one fault and
  // the handler lifts it (view_faults.cpp).
  (void)os::guard_remove(page_addr(View::user, first), len);
  (void)os::guard_remove(page_addr(View::kern, first), len);
  return {};
}

void ArenaImpl::free_chunk(std::uint32_t pgoff, std::uint32_t count, std::uint64_t& kept,
                           int& err) {
  const std::uint32_t first = pages_->abs_page(pgoff);
  pages_->begin_free(pgoff, count);
  // Punching the pages out of the file zaps them in every process's views at
  // once, as the kernel zaps every mapping of a freed arena page: a later
  // access anywhere is a missing-page event, resolved by the kernel's rules
  // (a lazy zeroed page, or SIGSEGV). Scratch pages are skipped, as the
  // kernel does. Pages the OS does not take back stay allocated: freeing
  // them would leave their data behind a free slot.
  for_each_run(
      first, first + count, [&](std::uint32_t p) { return slot(p).load() == kSlotFreeing; },
      [&](std::uint32_t p, std::uint32_t n) {
        if (int e = os::punch_hole(file_.fd(), std::uint64_t{p} * kPageSize,
                                   std::uint64_t{n} * kPageSize);
            e != 0) {
          pages_->cancel_free(p, n);
          kept += n;
          err = e;
        } else {
          pages_->finish_free(p, n);
        }
      });
}

Result<PauseStats> ArenaImpl::free(std::uint64_t addr, std::uint32_t count) {
  // As bpf_arena_free_pages(): NULL is nothing to free (even where offset 0 is
  // a page); otherwise low 32 bits, page aligned, clipped to the user range.
  if (addr == 0) return PauseStats{};
  std::uint64_t off = low32(addr) & ~std::uint64_t{kPageSize - 1};
  std::uint64_t end = off + std::uint64_t{count} * kPageSize;
  const std::uint64_t lo = low32(user_vm_start_), hi = lo + user_size();
  off = std::max(off, lo);
  end = std::min(end, hi);
  PauseStats pauses{};
  std::uint32_t pgoff = static_cast<std::uint32_t>((off - lo) / kPageSize);
  const std::uint32_t last = off < end ? static_cast<std::uint32_t>((end - lo) / kPageSize) : pgoff;
  if (pgoff == last) return pauses;
  std::uint64_t kept = 0;
  int err = 0;
  auto done = in_lock_slices(pauses, [&] {
    const std::uint32_t n = std::min(kChunkPages, last - pgoff);
    free_chunk(pgoff, n, kept, err);
    pgoff += n;
    return pgoff < last;
  });
  if (!done) return tl::unexpected(done.error());
  if (kept != 0) {
    return tl::unexpected(Error{Errc::system_error,
                                fmt::format("free_pages: {} page(s) could not be returned to the "
                                            "OS ({}); they stay allocated, free them again",
                                            kept, std::strerror(err)),
                                err});
  }
  return pauses;
}

Result<void> ArenaImpl::reserve(std::uint64_t addr, std::uint32_t count) {
  if (count == 0) {
    return make_error(Errc::invalid_argument, "reserve_pages: count must be at least 1");
  }
  auto p = page_index({user_vm_start_, max_entries_}, addr, count, "reserve_pages");
  if (!p) return tl::unexpected(p.error());
  auto guard = lock(true);
  if (!guard) return tl::unexpected(guard.error());
  if (!pages_->reserve(*p, count)) {
    return make_error(Errc::busy, fmt::format("reserve_pages: pages 0x{:x}..+{} are not all free "
                                              "(allocated or reserved already)",
                                              addr, count));
  }
  return {};
}

PageState ArenaImpl::page_state(std::uint32_t off) const {
  const CallGate::Pass pass = gate_.enter();
  if (!pass) return PageState::empty;
  return pages_->state(off / kPageSize);
}

ArenaStats ArenaImpl::stats() const {
  auto guard = lock(true);
  if (!guard) return ArenaStats{};
  return pages_->stats();
}

}  // namespace scxkit::internal
