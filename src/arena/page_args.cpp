#include "arena/page_args.hpp"

#include <fmt/format.h>

#include "arena/os.hpp"

namespace scxkit::internal {

Result<void> check_alloc_args(const UserRange& range, std::uint32_t count, int node) {
  if (count == 0) {
    return make_error(Errc::invalid_argument, "alloc_pages: count must be at least 1");
  }
  if (node != kNumaNoNode && (node < 0 || node >= os::online_numa_nodes())) {
    return make_error(Errc::invalid_argument,
                      fmt::format("alloc_pages: NUMA node {} is not online (this host has {}); "
                                  "pass kNumaNoNode",
                                  node, os::online_numa_nodes()));
  }
  if (count > range.max_entries) {
    return make_error(Errc::too_big, fmt::format("alloc_pages: {} pages exceed the arena's {}",
                                                 count, range.max_entries));
  }
  return {};
}

Result<std::uint32_t> page_index(const UserRange& range, std::uint64_t addr, std::uint32_t count,
                                 const char* what) {
  if (addr % kPageSize != 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{}: address 0x{:x} is not page aligned", what, addr));
  }
  const std::uint64_t pgoff = low32(addr - low32(range.user_vm_start)) / kPageSize;
  if (count > range.max_entries || pgoff > range.max_entries - count) {
    const std::uint64_t end = range.user_vm_start + std::uint64_t{range.max_entries} * kPageSize;
    return make_error(Errc::out_of_range,
                      fmt::format("{}: {} pages at 0x{:x} reach past the arena's user range "
                                  "0x{:x}..0x{:x}",
                                  what, count, addr, range.user_vm_start, end));
  }
  return static_cast<std::uint32_t>(pgoff);
}

}  // namespace scxkit::internal
