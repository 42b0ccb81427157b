#include "arena/kernel/kernel_backend.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "arena/os.hpp"

namespace scxkit::internal {

namespace {

std::size_t user_size(std::uint32_t pages) {
  return std::size_t{pages} * kPageSize;
}

// The kernel's answer to a map creation, in the terms ArenaImpl::create uses.
tl::unexpected<Error> creation_error(const ArenaOptions& o, const Error& e) {
  switch (e.sys_errno) {
    case EINVAL:
      if (o.numa_node != kNumaNoNode) {
        return make_error(Errc::unsupported,
                          fmt::format("this kernel refuses a NUMA node for arena maps "
                                      "(BPF_F_NUMA_NODE, node {}); leave numa_node at "
                                      "kNumaNoNode and pass a node to alloc_pages instead",
                                      o.numa_node));
      }
      return make_error(Errc::invalid_argument,
                        fmt::format("the kernel refused the arena: max_entries {} must be at "
                                    "least 1, map_flags 0x{:x} must include mmapable and only "
                                    "segv_on_fault/no_user_conv besides, map_extra 0x{:x} must "
                                    "be page aligned",
                                    o.max_entries, o.map_flags, o.map_extra));
    case E2BIG:
      return make_error(Errc::too_big,
                        fmt::format("max_entries {} is over 4 GiB of pages; an arena holds at "
                                    "most {} pages",
                                    o.max_entries, kMaxArenaPages));
    case ERANGE:
      return make_error(Errc::out_of_range,
                        fmt::format("user range at map_extra 0x{:x} crosses a 4 GiB boundary; "
                                    "pick a map_extra whose range stays inside one 4 GiB block",
                                    o.map_extra));
    case EPERM:
    case EOPNOTSUPP:
      return make_error(Errc::unsupported,
                        fmt::format("no kernel BPF arena here ({}); run as root or with "
                                    "CAP_BPF on Linux 6.9+, or use the emulated backend",
                                    e.message));
    default:
      return tl::unexpected(e);
  }
}

tl::unexpected<Error> bpf_error(std::string_view what, int err) {
  err = err < 0 ? -err : err;
  if (err == EPERM || err == EACCES) {
    return make_error(Errc::unsupported,
                      fmt::format("{}: not permitted (run as root or with CAP_BPF)", what));
  }
  if (err == ENOENT) return make_error(Errc::not_found, fmt::format("{}: no such map", what));
  return os_error(what, err);
}

}  // namespace

bool KernelBackend::is_arena_map(int fd) {
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  return bpf_map_get_info_by_fd(fd, &info, &len) == 0 && info.type == bpf::kMapTypeArena;
}

Result<bpf::Fd> KernelBackend::map_fd_by_id(std::uint32_t id) {
  const int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) return bpf_error(fmt::format("opening BPF map id {}", id), errno);
  return bpf::Fd(fd);
}

Result<bpf::Fd> KernelBackend::map_fd_by_pin(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return bpf_error(fmt::format("opening the pinned BPF object {}", path), errno);
  return bpf::Fd(fd);
}

Result<std::unique_ptr<Backend>> KernelBackend::create(const ArenaOptions& o) {
  if (!o.name.empty()) {
    return unsupported(ArenaBackend::kernel, "opening by name (ArenaOptions::name)",
                       "share a kernel arena by map id, pin() or its descriptor instead");
  }
  if (o.max_entries == 0 || std::uint64_t{o.max_entries} * kPageSize > k4GiB) {
    // Checked here too: the address is picked below, before the kernel sees the size.
    return creation_error(o, Error{Errc::system_error, "", o.max_entries == 0 ? EINVAL : E2BIG});
  }
  if (o.map_extra != 0 && o.map_extra + user_size(o.max_entries) > (std::uint64_t{1} << 47)) {
    return make_error(Errc::out_of_range,
                      fmt::format("map_extra 0x{:x} is not a user-space address", o.map_extra));
  }
  std::unique_ptr<KernelBackend> k(new KernelBackend());
  k->max_entries_ = o.max_entries;
  k->map_flags_ = o.map_flags;
  // Without map_extra the kernel would fix the address at the first mmap and
  // never tell another process; pick one (as the kernel would) and record it
  // in map_extra so open_map_id() finds it.
  std::uintptr_t reservation = 0;
  std::uint64_t start = o.map_extra;
  if (start == 0) {
    auto r = os::reserve_within_4gib(user_size(o.max_entries));
    if (!r) return tl::unexpected(r.error());
    reservation = start = *r;
  }
  auto map = bpf::create_arena_map(o.max_entries, start, o.map_flags, o.numa_node);
  if (!map) {
    if (reservation != 0) os::unmap(reservation, user_size(o.max_entries));
    return creation_error(o, map.error());
  }
  k->map_ = std::move(*map);
  k->user_vm_start_ = start;
  if (auto r = k->attach(reservation); !r) return tl::unexpected(r.error());
  return std::unique_ptr<Backend>(std::move(k));
}

Result<std::unique_ptr<Backend>> KernelBackend::open(bpf::Fd map, std::uint64_t user_vm_start) {
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  if (bpf_map_get_info_by_fd(map.get(), &info, &len) != 0) {
    return bpf_error("reading the BPF map's info", errno);
  }
  if (info.type != bpf::kMapTypeArena) {
    return make_error(Errc::invalid_argument,
                      fmt::format("BPF map id {} ('{}') is of type {}, not an arena ({})", info.id,
                                  info.name, info.type, bpf::kMapTypeArena));
  }
  const std::uint64_t start = info.map_extra != 0 ? info.map_extra : user_vm_start;
  if (start == 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("arena map id {} was created without map_extra: its user "
                                  "address was fixed by the first process that mapped it and the "
                                  "kernel does not report it; pass that address to open",
                                  info.id));
  }
  if (info.map_extra != 0 && user_vm_start != 0 && user_vm_start != info.map_extra) {
    return make_error(Errc::invalid_argument,
                      fmt::format("arena map id {} lives at 0x{:x}, not at 0x{:x}", info.id,
                                  info.map_extra, user_vm_start));
  }
  std::unique_ptr<KernelBackend> k(new KernelBackend());
  k->map_ = std::move(map);
  k->max_entries_ = info.max_entries;
  k->map_flags_ = info.map_flags;
  k->user_vm_start_ = start;
  if (auto r = k->attach(0); !r) return tl::unexpected(r.error());
  return std::unique_ptr<Backend>(std::move(k));
}

Result<void> KernelBackend::attach(std::uintptr_t reservation) {
  const std::size_t size = user_size(max_entries_);
  // Over our own reservation MAP_FIXED replaces it atomically; anywhere else
  // the range must be free.
  auto mapped = os::map_shared(user_vm_start_, size, map_.get(), 0, reservation != 0);
  if (!mapped) {
    if (reservation != 0) os::unmap(reservation, size);
    if (mapped.error().code == Errc::address_in_use) {
      return make_error(Errc::address_in_use,
                        fmt::format("the arena's user range 0x{:x}..0x{:x} overlaps a mapping "
                                    "that already exists in this process; pick another map_extra",
                                    user_vm_start_, user_vm_start_ + size));
    }
    if (mapped.error().sys_errno == EBUSY || mapped.error().sys_errno == EINVAL) {
      return make_error(Errc::invalid_argument,
                        fmt::format("the kernel refused to map the arena at 0x{:x} ({}): its "
                                    "users mapped it at another address",
                                    user_vm_start_, mapped.error().message));
    }
    return tl::unexpected(mapped.error());
  }
  mapped_ = true;
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  if (bpf_map_get_info_by_fd(map_.get(), &info, &len) != 0) {
    return bpf_error("reading the arena map's info", errno);
  }
  id_ = info.id;
  auto ops = bpf::ArenaOps::load(map_.get());
  if (!ops) return tl::unexpected(ops.error());
  ops_.emplace(std::move(*ops));
  return {};
}

KernelBackend::~KernelBackend() {
  teardown();
}

Result<bpf::ArenaOps*> KernelBackend::ops() {
  if (!ops_) {
    return make_error(Errc::invalid_argument,
                      "the arena was torn down in this process; create or open it again");
  }
  return &*ops_;
}

Result<std::uint64_t> KernelBackend::alloc(std::uint64_t addr, std::uint32_t count, int node,
                                           bool may_sleep) {
  if (!may_sleep) {
    return unsupported(ArenaBackend::kernel, "try_alloc_pages",
                       "Linux 6.18's bpf_arena_alloc_pages takes the arena mutex and allocates "
                       "with GFP_KERNEL, so it may sleep; call alloc_pages where sleeping is "
                       "allowed");
  }
  if (auto ok = check_alloc_args(range(), count, node); !ok) return tl::unexpected(ok.error());
  if (addr != 0) {
    if (auto p = page_index(range(), addr, count, "alloc_pages"); !p) {
      return tl::unexpected(p.error());
    }
  }
  auto o = ops();
  if (!o) return tl::unexpected(o.error());
  auto got = (*o)->alloc_pages(addr, count, node);
  if (!got) return tl::unexpected(got.error());
  if (*got != 0) return *got;
  // The kfunc says only "no"; with an address that means some page is taken.
  if (addr != 0) {
    return make_error(Errc::busy,
                      fmt::format("alloc_pages: pages 0x{:x}..+{} are not all free", addr, count));
  }
  return make_error(Errc::no_space,
                    fmt::format("alloc_pages: no run of {} free pages left in the arena", count));
}

Result<PauseStats> KernelBackend::free(std::uint64_t addr, std::uint32_t count) {
  auto o = ops();
  if (!o) return tl::unexpected(o.error());
  PauseStats pauses{};
  const std::uint64_t t0 = os::monotonic_ns();
  if (auto r = (*o)->free_pages(addr, count); !r) return tl::unexpected(r.error());
  pauses.record(os::monotonic_ns() - t0);  // one call; the kernel holds its mutex throughout
  return pauses;
}

Result<void> KernelBackend::reserve(std::uint64_t addr, std::uint32_t count) {
  if (count == 0) {
    return make_error(Errc::invalid_argument, "reserve_pages: count must be at least 1");
  }
  if (auto p = page_index(range(), addr, count, "reserve_pages"); !p) {
    return tl::unexpected(p.error());
  }
  auto o = ops();
  if (!o) return tl::unexpected(o.error());
  auto rc = (*o)->reserve_pages(addr, count);
  if (!rc) return tl::unexpected(rc.error());
  if (*rc == 0) return {};
  if (*rc == -EOPNOTSUPP) {
    return unsupported(ArenaBackend::kernel, "reserve_pages",
                       "this kernel has no bpf_arena_reserve_pages (Linux 6.16+)");
  }
  if (*rc == -EBUSY || *rc == -EALREADY) {
    return make_error(Errc::busy, fmt::format("reserve_pages: pages 0x{:x}..+{} are not all free "
                                              "(allocated or reserved already)",
                                              addr, count));
  }
  return os_error("bpf_arena_reserve_pages", -*rc);
}

PageState KernelBackend::page_state(std::uint32_t off) const {
  const std::uint64_t lo = user_vm_start_ & 0xffff'ffffull;
  if (!mapped_ || off < lo || off - lo >= user_size(max_entries_)) return PageState::empty;
  unsigned char in = 0;
  const std::uint64_t page =
      (user_vm_start_ & ~(k4GiB - 1)) + (off & ~std::uint64_t{kPageSize - 1});
  if (!os::resident(page, kPageSize, &in)) return PageState::unknown;
  return (in & 1) != 0 ? PageState::allocated : PageState::unknown;
}

Result<void> KernelBackend::pin(const std::string& path) const {
  if (bpf_obj_pin(map_.get(), path.c_str()) != 0) {
    return bpf_error(fmt::format("pinning the arena map at {} (a path in a mounted bpffs)", path),
                     errno);
  }
  return {};
}

Result<void> KernelBackend::attach_to(::bpf_map* map) const {
  if (map == nullptr) return make_error(Errc::invalid_argument, "attach_to: the map is null");
  if (bpf_map__type(map) != static_cast<bpf_map_type>(bpf::kMapTypeArena)) {
    return make_error(Errc::invalid_argument,
                      fmt::format("attach_to: map '{}' is not an arena map (type {}); declare it "
                                  "with __uint(type, BPF_MAP_TYPE_ARENA)",
                                  bpf_map__name(map), static_cast<int>(bpf_map__type(map))));
  }
  // bpf_map__reuse_fd() would accept a loaded object and change nothing its
  // programs use; libbpf's setters refuse once loaded, so ask one.
  if (bpf_map__set_map_flags(map, bpf_map__map_flags(map)) == -EBUSY) {
    return make_error(Errc::busy, fmt::format("attach_to: the object of map '{}' is loaded "
                                              "already; hand the arena over between open and load",
                                              bpf_map__name(map)));
  }
  if (const int err = bpf_map__reuse_fd(map, map_.get()); err != 0) {
    return bpf_error(fmt::format("attach_to: handing the arena to map '{}' (the object must not "
                                 "be loaded yet)",
                                 bpf_map__name(map)),
                     err);
  }
  return {};
}

PauseStats KernelBackend::teardown() {
  PauseStats pauses{};
  ops_.reset();
  if (mapped_) {
    const std::uint64_t t0 = os::monotonic_ns();
    os::unmap(user_vm_start_, user_size(max_entries_));
    pauses.record(os::monotonic_ns() - t0);
    mapped_ = false;
  }
  map_ = bpf::Fd();
  return pauses;
}

}  // namespace scxkit::internal
