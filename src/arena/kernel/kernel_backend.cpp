#include "arena/kernel/kernel_backend.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "arena/os.hpp"
#include "bpf/bpf_objects.hpp"
#include "bpf/libbpf_util.hpp"

namespace scxkit::internal {

namespace {

std::size_t user_size(std::uint32_t pages) {
  return std::size_t{pages} * kPageSize;
}

// The kernel's answer to a map creation, in the terms ArenaImpl::create uses.
tl::unexpected<Error> creation_error(const ArenaOptions& o, const Error& e) {
  switch (e.sys_errno) {
    case EINVAL:
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

}  // namespace

bool KernelBackend::is_arena_map(int fd) {
  auto info = bpf::map_info(fd);
  return info && info->is_arena();
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
  // Without map_extra, pick the address as the kernel would and record it in
  // map_extra: every user finds it there, even before this process maps it.
  std::uint64_t start = o.map_extra;
  if (start == 0) {
    auto r = os::reserve_within_4gib(user_size(o.max_entries));
    if (!r) return tl::unexpected(r.error());
    os::unmap(*r, user_size(o.max_entries));  // mapped again below; a thief makes it fail cleanly
    start = *r;
  }
  auto map = bpf::create_arena_map(o.max_entries, start, o.map_flags, o.numa_node);
  if (!map && map.error().sys_errno == EINVAL && o.numa_node != kNumaNoNode) {
    // Was it the node? Ask the kernel the same without one.
    auto plain = bpf::create_arena_map(o.max_entries, start, o.map_flags, kNumaNoNode);
    if (!plain) return creation_error(o, plain.error());
    return make_error(Errc::unsupported,
                      fmt::format("this kernel refuses a NUMA node for arena maps "
                                  "(BPF_F_NUMA_NODE, node {}) although it takes the same arena "
                                  "without one; leave numa_node at kNumaNoNode and pass a node "
                                  "to alloc_pages instead",
                                  o.numa_node));
  }
  if (!map) return creation_error(o, map.error());
  std::unique_ptr<KernelBackend> k(new KernelBackend(std::move(*map)));
  if (auto r = k->attach(); !r) return tl::unexpected(r.error());
  return std::unique_ptr<Backend>(std::move(k));
}

Result<std::unique_ptr<Backend>> KernelBackend::open(bpf::Fd map) {
  std::unique_ptr<KernelBackend> k(new KernelBackend(std::move(map)));
  if (auto r = k->attach(); !r) return tl::unexpected(r.error());
  return std::unique_ptr<Backend>(std::move(k));
}

Result<void> KernelBackend::attach() {
  auto info = bpf::map_info(map_.get());
  if (!info) return tl::unexpected(info.error());
  auto view = map_kernel_arena(map_.get());
  if (!view) return tl::unexpected(view.error());
  id_ = info->id;
  max_entries_ = info->max_entries;
  map_flags_ = info->map_flags;
  user_vm_start_ = view->user_vm_start();
  view_.emplace(std::move(*view));
  auto ops = bpf::ArenaOps::load(map_.get());
  if (!ops) return tl::unexpected(ops.error());
  ops_.emplace(std::move(*ops));
  // Probed here, not on the never-sleeping path: loading a program sleeps.
  try_alloc_.emplace(bpf::ArenaTryAlloc::load(map_.get()));
  if (!*try_alloc_ && try_alloc_->error().code != Errc::unsupported) {
    return tl::unexpected(try_alloc_->error());
  }
  auto inspector = bpf::ArenaInspector::load(map_.get());
  if (!inspector) return tl::unexpected(inspector.error());
  auto layout = inspector->layout();
  if (!layout) return tl::unexpected(layout.error());
  kern_vm_start_ = layout->kern_vm_start;
  inspector_.emplace(std::move(*inspector));
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
  auto o = ops();
  if (!o) return tl::unexpected(o.error());
  if (!may_sleep && !*try_alloc_) {
    return unsupported(ArenaBackend::kernel, "try_alloc_pages", try_alloc_->error().message);
  }
  if (auto ok = check_alloc_args(range(), count, node); !ok) return tl::unexpected(ok.error());
  if (addr != 0) {
    if (auto p = page_index(range(), addr, count, "alloc_pages"); !p) {
      return tl::unexpected(p.error());
    }
  }
  auto got = may_sleep ? (*o)->alloc_pages(addr, count, node)
                       : (*try_alloc_)->alloc_pages(addr, count, node);
  if (!got) return tl::unexpected(got.error());
  if (*got != 0) return *got;
  // The kfunc says only "no"; with an address that means some page is taken.
  // Never sleeping, it also says no when what it needs is not free at once.
  const std::string_view at_once = may_sleep ? "" : " (or not to be had without waiting; retry)";
  if (addr != 0) {
    return make_error(Errc::busy, fmt::format("alloc_pages: pages 0x{:x}..+{} are not all free{}",
                                              addr, count, at_once));
  }
  return make_error(
      Errc::no_space,
      fmt::format("alloc_pages: no run of {} free pages left in the arena{}", count, at_once));
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
  const std::uint64_t lo = low32(user_vm_start_);
  if (!inspector_ || off < lo || off - lo >= user_size(max_entries_)) return PageState::empty;
  auto backed = inspector_->backed_pages(static_cast<std::uint32_t>((off - lo) / kPageSize), 1);
  return backed && (*backed)[0] ? PageState::allocated : PageState::unknown;
}

Result<void> KernelBackend::pin(const std::string& path) const {
  if (bpf_obj_pin(map_.get(), path.c_str()) != 0) {
    return bpf::libbpf_error(
        fmt::format("pinning the arena map at {} (a path in a mounted bpffs)", path), errno);
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
    return bpf::libbpf_error(
        fmt::format("attach_to: handing the arena to map '{}' (the object must not "
                    "be loaded yet)",
                    bpf_map__name(map)),
        err);
  }
  return {};
}

PauseStats KernelBackend::teardown() {
  PauseStats pauses{};
  ops_.reset();
  try_alloc_.reset();
  inspector_.reset();
  const std::uint64_t t0 = os::monotonic_ns();
  view_.reset();  // unmaps this process's user view; the pages stay with the map
  pauses.record(os::monotonic_ns() - t0);
  map_ = bpf::Fd();
  return pauses;
}

}  // namespace scxkit::internal
