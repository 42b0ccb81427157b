#include "arena/page_table.hpp"

namespace scxkit::internal {

void PageTable::init(RangeTree& tree, std::uint32_t max_entries) {
  tree.reset(RangeTree::nodes_needed(max_entries));
  tree.set(0, max_entries);
}

bool PageTable::claim_range(std::uint32_t pgoff, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    auto& s = slot(abs_page(pgoff + i));
    for (;;) {
      std::uint32_t seen = kSlotEmpty;
      if (s.compare_exchange_strong(seen, kSlotClaimed)) break;
      if (seen == kSlotScratch && s.compare_exchange_strong(seen, kSlotClaimedScratch)) break;
      if (seen == kSlotEmpty || seen == kSlotScratch) continue;  // lost a race; look again
      // Taken behind the tree's back (every writer keeps the tree in step, so
      // only a damaged control block gets here): give back what was claimed,
      // teach the tree.
      abandon(pgoff, i);
      tree_->clear(pgoff + i, 1);
      return false;
    }
  }
  return true;
}

std::optional<std::uint32_t> PageTable::claim_at(std::uint32_t pgoff, std::uint32_t count) {
  while (tree_->is_set(pgoff, count)) {
    if (claim_range(pgoff, count)) return pgoff;
  }
  return std::nullopt;
}

std::optional<std::uint32_t> PageTable::claim_best_fit(std::uint32_t count) {
  while (auto fit = tree_->find(count)) {
    if (claim_range(*fit, count)) return *fit;
  }
  return std::nullopt;
}

std::uint64_t PageTable::publish(std::uint32_t pgoff, std::uint32_t count) {
  tree_->clear(pgoff, count);
  std::uint64_t scratch = 0;
  for (std::uint32_t p = abs_page(pgoff); p < abs_page(pgoff + count); ++p) {
    scratch += slot(p).exchange(kSlotAllocated) == kSlotClaimedScratch;
  }
  counters_->scratch.fetch_sub(scratch);
  counters_->allocated.fetch_add(count);
  return scratch;
}

void PageTable::abandon(std::uint32_t pgoff, std::uint32_t count) {
  for (std::uint32_t p = abs_page(pgoff); p < abs_page(pgoff + count); ++p) {
    auto& s = slot(p);
    s.store(s.load() == kSlotClaimedScratch ? kSlotScratch : kSlotEmpty);
  }
}

void PageTable::begin_free(std::uint32_t pgoff, std::uint32_t count) {
  std::uint64_t unreserved = 0;
  for (std::uint32_t p = abs_page(pgoff); p < abs_page(pgoff + count); ++p) {
    std::uint32_t seen = kSlotAllocated;
    if (slot(p).compare_exchange_strong(seen, kSlotFreeing)) continue;
    if (seen == kSlotReserved && slot(p).compare_exchange_strong(seen, kSlotEmpty)) {
      ++unreserved;
      tree_->set(p - first_page_, 1);
    } else if (seen == kSlotScratch) {
      // Scratch stays (never freed as data), but the page is allocatable again
      // even if it was reserved before a stray access scratched it.
      tree_->set(p - first_page_, 1);
    }
  }
  counters_->reserved.fetch_sub(unreserved);
}

void PageTable::finish_free(std::uint32_t abs, std::uint32_t n) {
  for (std::uint32_t p = abs; p < abs + n; ++p) slot(p).store(kSlotEmpty);
  tree_->set(abs - first_page_, n);
  counters_->allocated.fetch_sub(n);
}

void PageTable::cancel_free(std::uint32_t abs, std::uint32_t n) {
  for (std::uint32_t p = abs; p < abs + n; ++p) slot(p).store(kSlotAllocated);
}

bool PageTable::reserve(std::uint32_t pgoff, std::uint32_t count) {
  if (!tree_->is_set(pgoff, count)) return false;
  std::uint64_t reserved = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t seen = kSlotEmpty;
    if (slot(abs_page(pgoff + i)).compare_exchange_strong(seen, kSlotReserved)) {
      ++reserved;
    } else if (seen != kSlotScratch) {
      // Allocated behind the tree's back: undo and report it taken.
      for (std::uint32_t j = 0; j < i; ++j) {
        std::uint32_t r = kSlotReserved;
        slot(abs_page(pgoff + j)).compare_exchange_strong(r, kSlotEmpty);
      }
      tree_->clear(pgoff + i, 1);
      return false;
    }
  }
  tree_->clear(pgoff, count);
  counters_->reserved.fetch_add(reserved);
  return true;
}

void PageTable::allocate_lazily(std::uint32_t abs, std::uint32_t seen) {
  slot(abs).store(kSlotAllocated);
  tree_->clear(abs - first_page_, 1);
  counters_->allocated.fetch_add(1);
  counters_->lazy.fetch_add(1);
  if (seen == kSlotReserved) counters_->reserved.fetch_sub(1);
}

bool PageTable::install_scratch(std::uint32_t abs, std::uint32_t seen) {
  if (!slot(abs).compare_exchange_strong(seen, kSlotScratch)) return false;
  counters_->scratch.fetch_add(1);
  if (seen == kSlotReserved) counters_->reserved.fetch_sub(1);
  return true;
}

void PageTable::rebuild() {
  std::uint64_t allocated = 0, reserved = 0, scratch = 0;
  for (std::uint32_t p = 0; p < slot_count_; ++p) {
    const std::uint32_t s = slot(p).load();
    allocated += s == kSlotAllocated;
    reserved += s == kSlotReserved;
    scratch += s == kSlotScratch;
  }
  tree_->reset(RangeTree::nodes_needed(max_entries_));
  for_each_run(
      first_page_, first_page_ + max_entries_,
      [&](std::uint32_t p) {
        const std::uint32_t s = slot(p).load();
        return s != kSlotAllocated && s != kSlotReserved;
      },
      [&](std::uint32_t p, std::uint32_t n) { tree_->set(p - first_page_, n); });
  counters_->allocated.store(allocated);
  counters_->reserved.store(reserved);
  counters_->scratch.store(scratch);
}

PageState PageTable::state(std::uint32_t abs) const {
  if (abs >= slot_count_) return PageState::empty;
  switch (slot(abs).load()) {
    case kSlotScratch:
      return PageState::scratch;
    case kSlotEmpty:
      return PageState::empty;
    case kSlotAllocated:
      return PageState::allocated;
    case kSlotReserved:
      return PageState::reserved;
    default:
      return PageState::changing;
  }
}

ArenaStats PageTable::stats() const {
  ArenaStats s;
  s.free_pages = tree_->free_pages();
  s.free_extents = tree_->extent_count();
  s.allocated_pages = counters_->allocated.load();
  s.lazy_pages = counters_->lazy.load();
  s.reserved_pages = counters_->reserved.load();
  s.scratch_pages = counters_->scratch.load();
  return s;
}

}  // namespace scxkit::internal
