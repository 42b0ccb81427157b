// Page allocation over slots and the range tree: the kernel arena allocator's
// bookkeeping, with no OS call in it.
//
// One atomic slot per page of the kernel view says what the page holds; the
// range tree (range_tree.hpp) indexes the free extents of the user range so
// placement is the kernel's. The slot table is the truth, the tree an index.
// Callers hold the arena lock for every call except the lock-free readers
// (state(), slot()) and install_scratch(), a single CAS. What touches memory
// — giving pages, punching them out, guard markers — is the caller's: a
// backend runs it between claim*() and publish()/abandon(), and between
// begin_free() and finish_free()/cancel_free(), so an OS failure leaves every
// slot and the tree as they were.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "arena/range_tree.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::internal {

// What one page slot holds.
enum SlotState : std::uint32_t {
  kSlotEmpty = 0,
  kSlotAllocated = 1,
  kSlotReserved = 2,
  kSlotScratch = 3,
  kSlotClaimed = 4,         // being allocated, was empty
  kSlotClaimedScratch = 5,  // being allocated, scratch is being replaced
  kSlotFreeing = 6,
};

// An allocation or a free is changing the slot. Only holders of the arena
// lock make these transitions, so a holder that dies leaves them to the next
// one to finish (repair()); no other state is ever transitional.
constexpr bool changing_under_lock(std::uint32_t s) {
  return s == kSlotClaimed || s == kSlotClaimedScratch || s == kSlotFreeing;
}

// Calls fn(first, count) for each maximal run of [begin, end) where pred holds.
template <class Pred, class Fn>
inline void for_each_run(std::uint32_t begin, std::uint32_t end, Pred pred, Fn fn) {
  std::uint32_t i = begin;
  while (i < end) {
    while (i < end && !pred(i)) ++i;
    const std::uint32_t first = i;
    while (i < end && pred(i)) ++i;
    if (i > first) fn(first, i - first);
  }
}

// Page counters kept beside the slots (in memory every user shares).
struct PageCounters {
  std::atomic<std::uint64_t> allocated;  // including lazily faulted pages
  std::atomic<std::uint64_t> lazy;
  std::atomic<std::uint64_t> reserved;
  std::atomic<std::uint64_t> scratch;
};

class PageTable {
 public:
  // `slots` covers every page of the kernel view (`slot_count`); the user
  // range is the `max_entries` slots from `first_page`. Page offsets
  // (`pgoff`) count from the user range's first page, slot indexes (`abs`)
  // from arena offset 0.
  PageTable(std::atomic<std::uint32_t>* slots, std::uint32_t slot_count, RangeTree* tree,
            PageCounters* counters, std::uint32_t first_page, std::uint32_t max_entries)
      : slots_(slots),
        slot_count_(slot_count),
        tree_(tree),
        counters_(counters),
        first_page_(first_page),
        max_entries_(max_entries) {}

  std::atomic<std::uint32_t>& slot(std::uint32_t abs) const { return slots_[abs]; }
  std::uint32_t abs_page(std::uint32_t pgoff) const { return first_page_ + pgoff; }
  std::uint32_t first_page() const { return first_page_; }
  std::uint32_t slot_count() const { return slot_count_; }
  bool in_user_range(std::uint32_t abs) const { return abs - first_page_ < max_entries_; }

  // A new arena's tree: every page of the user range free. Before any
  // thread that could use the table exists (it takes no lock).
  static void init(RangeTree& tree, std::uint32_t max_entries);

  // Allocation, step 1: claims `count` slots at exactly `pgoff` (nullopt:
  // some page there is not free) or where the kernel's range tree puts them
  // (nullopt: no free run that long). Claimed slots are kSlotClaimed or,
  // where a stray access left scratch, kSlotClaimedScratch.
  std::optional<std::uint32_t> claim_at(std::uint32_t pgoff, std::uint32_t count);
  std::optional<std::uint32_t> claim_best_fit(std::uint32_t count);
  // Step 2, once the pages are there: the range leaves the tree and its
  // slots become allocated. Returns how many held scratch.
  std::uint64_t publish(std::uint32_t pgoff, std::uint32_t count);
  // Or, when they could not be given: the claims are undone; the tree never
  // saw them.
  void abandon(std::uint32_t pgoff, std::uint32_t count);

  // Free, step 1: allocated slots of [pgoff, pgoff+count) become freeing;
  // reserved ones are free at once; scratch stays, but is allocatable again.
  void begin_free(std::uint32_t pgoff, std::uint32_t count);
  // Step 2 per run of freeing slots [abs, abs+n): their pages are gone (free),
  // or could not be taken away (they stay allocated).
  void finish_free(std::uint32_t abs, std::uint32_t n);
  void cancel_free(std::uint32_t abs, std::uint32_t n);

  // reserve_pages(): false when some page of the range is not free.
  bool reserve(std::uint32_t pgoff, std::uint32_t count);
  // A user-view touch allocated an empty or reserved page (its page is there).
  void allocate_lazily(std::uint32_t abs, std::uint32_t seen);
  // A stray kernel-view access: `seen` (empty, reserved) becomes scratch,
  // iff the slot still holds it. Lock-free.
  bool install_scratch(std::uint32_t abs, std::uint32_t seen);

  // After a lock holder died: calls drop_page(abs) for each slot it left
  // changing (whatever that slot's page holds must go), settles the slot
  // the dead holder's way (free; scratch stays scratch), then rebuilds the
  // tree and counters from the slots.
  template <class DropPage>
  void repair(DropPage drop_page);

  PageState state(std::uint32_t abs) const;
  ArenaStats stats() const;

 private:
  // Claims [pgoff, pgoff+count) or, if a slot is taken behind the tree's
  // back, gives back what it claimed and teaches the tree.
  bool claim_range(std::uint32_t pgoff, std::uint32_t count);
  void rebuild();

  std::atomic<std::uint32_t>* slots_;
  std::uint32_t slot_count_;
  RangeTree* tree_;
  PageCounters* counters_;
  std::uint32_t first_page_;
  std::uint32_t max_entries_;
};

template <class DropPage>
void PageTable::repair(DropPage drop_page) {
  for (std::uint32_t p = 0; p < slot_count_; ++p) {
    std::uint32_t seen = slot(p).load();
    if (!changing_under_lock(seen)) continue;
    drop_page(p);
    slot(p).compare_exchange_strong(seen, seen == kSlotClaimedScratch ? kSlotScratch : kSlotEmpty);
  }
  rebuild();
}

}  // namespace scxkit::internal
