// map_kernel_arena(): a user view of a kernel arena at its fixed address.
#include <sys/mman.h>

#include <cerrno>

#include <fmt/format.h>

#include "bpf/arena_inspect.hpp"
#include "bpf/bpf_objects.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit {

ArenaMapping::ArenaMapping(ArenaMapping&& o) noexcept : start_(o.start_), size_(o.size_) {
  o.start_ = o.size_ = 0;
}

ArenaMapping& ArenaMapping::operator=(ArenaMapping&& o) noexcept {
  if (this != &o) {
    this->~ArenaMapping();
    start_ = std::exchange(o.start_, 0);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

ArenaMapping::~ArenaMapping() {
  if (size_ != 0) munmap(reinterpret_cast<void*>(start_), size_);
}

Result<ArenaMapping> map_kernel_arena(int map_fd) {
  auto info = bpf::map_info(map_fd);
  if (!info) return tl::unexpected(info.error());
  if (!info->is_arena()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("BPF map {} '{}' is not an arena (type {}, arenas are {})",
                                  info->id, info->name, info->type, kBpfMapTypeArena));
  }
  // Every mapping of an arena must sit at the same address with the same
  // size. map_extra names it when set; otherwise the first mapping chose it,
  // and only the kernel's struct bpf_arena knows where.
  std::uint64_t start = info->map_extra;
  std::uint64_t size = std::uint64_t{info->max_entries} * kPageSize;
  if (start == 0) {
    auto inspector = bpf::ArenaInspector::load(map_fd);
    if (inspector) {
      auto layout = inspector->layout();
      if (!layout) return tl::unexpected(layout.error());
      start = layout->user_vm_start;
      size = layout->user_vm_end - layout->user_vm_start;
    } else if (inspector.error().code != Errc::not_found) {
      return tl::unexpected(inspector.error());
    }  // not_found: nobody mapped it yet; this mapping fixes the address
  }
  const int flags = MAP_SHARED | (start != 0 ? MAP_FIXED_NOREPLACE : 0);
  void* p = mmap(reinterpret_cast<void*>(start), size, PROT_READ | PROT_WRITE, flags, map_fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    if (err == EEXIST) {
      return make_error(Errc::address_in_use,
                        fmt::format("arena map {} '{}' is already mapped in this process at 0x{:x} "
                                    "(by the libbpf object that loaded it?): use that mapping, or "
                                    "close the object first",
                                    info->id, info->name, start));
    }
    return os_error(fmt::format("mapping arena map {} '{}'", info->id, info->name), err);
  }
  if (start != 0 && reinterpret_cast<std::uint64_t>(p) != start) {
    munmap(p, size);  // a kernel without MAP_FIXED_NOREPLACE took it as a hint
    return make_error(
        Errc::address_in_use,
        fmt::format("arena map {} must be mapped at 0x{:x}, which is taken", info->id, start));
  }
  return ArenaMapping(reinterpret_cast<std::uint64_t>(p), size);
}

}  // namespace scxkit
