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

#include "arena/page_table.hpp"
#include "arena/range_tree.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::internal {

inline constexpr std::uint64_t kKernMappedSize = k4GiB + kGuardSize / 2;
inline constexpr std::uint32_t kSlotCount = static_cast<std::uint32_t>(kKernMappedSize / kPageSize);
inline constexpr std::uint64_t kControlOffset = k4GiB + kGuardSize;
inline constexpr std::uint64_t kControlMagic = 0x616e6572'61786373ull;  // "scxarena"
inline constexpr std::uint32_t kControlVersion = 4;  // 4: the range tree indexes sizes
inline constexpr std::size_t kMaxNameLength = 200;

struct Control {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t max_entries;
  std::uint32_t map_flags;
  std::uint32_t reserved0;
  std::uint64_t user_vm_start;
  pthread_mutex_t lock;  // process-shared, robust
  std::atomic<std::uint64_t> lock_acquisitions;
  PageCounters pages;
  RangeTree::Header tree;
  // The name it was created with ("" for none), so whichever user is the
  // last — also one that got the arena by descriptor — removes it.
  char name[kMaxNameLength + 1];
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
