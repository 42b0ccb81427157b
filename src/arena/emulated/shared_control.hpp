// The part of an arena's shared memory file that is not data: one control
// block every process that opens the arena maps. File layout:
//
//   [0, 4 GiB + GUARD_SZ/2)   data; file offset == arena offset, so the kernel
//                             view maps it whole and the user view maps its
//                             slice; the upper half-guard pages never hold data
//   [kControlOffset, ...)     Control, the slot table, the range tree's nodes
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "arena/range_tree.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::internal {

// What one page slot holds; the atomic per page is the source of truth, the
// range tree only an index of allocatable extents.
enum SlotState : std::uint32_t {
  kSlotEmpty = 0,
  kSlotAllocated = 1,
  kSlotReserved = 2,
  kSlotScratch = 3,
  kSlotClaimed = 4,         // being allocated, was empty
  kSlotClaimedScratch = 5,  // being allocated, scratch is being replaced
  kSlotFreeing = 6,
  kSlotMappingScratch = 7,  // a fault handler is lifting the guard over scratch
  kSlotEvicting = 8,        // scratch backing is being dropped to bound memory
};

// An allocation or a free, which hold the arena lock, is changing the slot.
constexpr bool changing_under_lock(std::uint32_t s) {
  return s == kSlotClaimed || s == kSlotClaimedScratch || s == kSlotFreeing;
}
// Scratch, possibly with a fault handler installing or evicting its backing.
constexpr bool holds_scratch(std::uint32_t s) {
  return s == kSlotScratch || s == kSlotMappingScratch || s == kSlotEvicting;
}

inline constexpr std::uint64_t kKernMappedSize = k4GiB + kGuardSize / 2;
inline constexpr std::uint32_t kSlotCount = static_cast<std::uint32_t>(kKernMappedSize / kPageSize);
inline constexpr std::uint64_t kControlOffset = k4GiB + kGuardSize;
inline constexpr std::uint64_t kControlMagic = 0x616e6572'61786373ull;  // "scxarena"
inline constexpr std::uint32_t kControlVersion = 3;  // 3: the range tree indexes sizes
inline constexpr std::uint32_t kMaxAttachedProcesses = 64;
inline constexpr std::uint32_t kFreeLogSize = 256;
inline constexpr std::uint32_t kLazyLogSize = 1024;

// A range freed by one process that the others must guard in their views.
struct FreeRecord {
  std::atomic<std::uint64_t> seq;  // which free this is; a stale value means overwritten
  std::atomic<std::uint32_t> first_page;
  std::atomic<std::uint32_t> pages;
};

// A page a user-view fault allocated lazily, in fault order: the kernel takes
// such a page out of its range tree at fault time, and the order of those
// changes decides later placements, so the lock holder replays them in order.
struct LazyRecord {
  std::atomic<std::uint64_t> seq;  // which fault this is; another value: not (yet) this one
  std::atomic<std::uint32_t> page;
};

// A process that has the arena mapped, and the last free it has synced.
struct AttachedProcess {
  std::atomic<std::int32_t> pid;  // 0: free slot
  std::atomic<std::uint64_t> synced_seq;
};

struct Control {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t max_entries;
  std::uint32_t map_flags;
  std::uint32_t reserved0;
  std::uint64_t user_vm_start;
  pthread_mutex_t lock;  // process-shared, robust
  // Chunked work hands the lock to waiters between chunks; a plain mutex
  // would let the releasing thread take it straight back.
  std::atomic<std::uint32_t> lock_waiters;
  std::atomic<std::uint64_t> lock_acquisitions;
  std::atomic<std::uint32_t> open_count;
  std::atomic<std::uint32_t> dying;  // the last user is tearing it down
  std::atomic<std::uint64_t> allocated_pages;
  std::atomic<std::uint64_t> lazy_faults;
  std::atomic<std::uint64_t> reserved_pages;
  std::atomic<std::uint64_t> scratch_pages;
  RangeTree::Header tree;
  std::atomic<std::uint64_t> free_seq;  // the newest FreeRecord
  AttachedProcess attached[kMaxAttachedProcesses];
  FreeRecord free_log[kFreeLogSize];
  std::atomic<std::uint64_t> lazy_seq;  // the newest LazyRecord
  std::uint64_t lazy_replayed;          // under the lock: replayed up to here
  LazyRecord lazy_log[kLazyLogSize];
};

struct ControlLayout {
  std::size_t slots_offset;
  std::size_t nodes_offset;
  std::size_t size;

  static constexpr std::size_t round_page(std::size_t n) {
    return (n + kPageSize - 1) & ~(kPageSize - 1);
  }
  static constexpr ControlLayout for_pages(std::uint32_t max_entries) {
    ControlLayout l{};
    l.slots_offset = round_page(sizeof(Control));
    l.nodes_offset = l.slots_offset + round_page(sizeof(std::uint32_t) * kSlotCount);
    l.size =
        l.nodes_offset + round_page(sizeof(RangeTree::Node) * RangeTree::nodes_needed(max_entries));
    return l;
  }
};

}  // namespace scxkit::internal
