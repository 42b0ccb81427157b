// Argument checks of the page allocator calls, the same for every backend,
// so both answer bad input with the same error.
#pragma once

#include <cstdint>

#include "scxkit/arena.hpp"

namespace scxkit::internal {

// An address's arena offset part: only the low 32 bits of an arena address
// matter (the kernel's compute_pgoff()).
constexpr std::uint64_t low32(std::uint64_t v) {
  return v & 0xffff'ffffull;
}

// The arena's user range, as the checks need it.
struct UserRange {
  std::uint64_t user_vm_start;
  std::uint32_t max_entries;
};

// alloc_pages(): count 1..max_entries and an online NUMA node or kNumaNoNode.
Result<void> check_alloc_args(const UserRange& range, std::uint32_t count, int node);
// A page-aligned user-form address whose `count` pages lie in the user range,
// converted to a page index from user_vm_start (only the low 32 bits of the
// address matter, as in the kernel's compute_pgoff()).
Result<std::uint32_t> page_index(const UserRange& range, std::uint64_t addr, std::uint32_t count,
                                 const char* what);

}  // namespace scxkit::internal
