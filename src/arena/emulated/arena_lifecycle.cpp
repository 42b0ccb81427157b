// Creating, opening, mapping and tearing down an emulated arena: the memory
// file and its control block, the two views, the view server, and the last
// user's cleanup.
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "arena/emulated/arena_impl.hpp"
#include "arena/os.hpp"
#include "arena/page_args.hpp"

namespace scxkit::internal {

namespace {

constexpr std::uint32_t kAllowedFlags =
    arena_flags::mmapable | arena_flags::segv_on_fault | arena_flags::no_user_conv;
constexpr std::size_t kUnmapChunk = std::size_t{512} << 10;
constexpr std::size_t kMaxUnmapChunk = std::size_t{256} << 20;

// Runs step(offset, length) over [0, size) in slices that start at
// kUnmapChunk and grow while each takes well under kMaxHoldNs (a sparse
// 4 GiB range takes a few calls, not 8192), shrinking again when one takes
// longer; records each.
template <class Step>
void in_growing_slices(std::uint64_t size, PauseStats& pauses, Step step) {
  std::uint64_t slice = kUnmapChunk;
  for (std::uint64_t done = 0; done < size;) {
    const std::uint64_t n = std::min(slice, size - done);
    const std::uint64_t t0 = os::monotonic_ns();
    step(done, n);
    const std::uint64_t took = os::monotonic_ns() - t0;
    pauses.record(took);
    done += n;
    if (took < kMaxHoldNs / 4 && slice < kMaxUnmapChunk) {
      slice *= 2;
    } else if (took > kMaxHoldNs && slice > kUnmapChunk) {
      slice /= 2;
      os::yield_cpu();
    }
  }
}

// The control block's robust, process-shared mutex.
Result<void> init_shared_lock(pthread_mutex_t* m) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) return os_error("initialising the arena lock", rc);
  return {};
}

}  // namespace

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::create(const ArenaOptions& o) {
  if (o.max_entries == 0) {
    return make_error(Errc::invalid_argument, "max_entries must be at least 1 page");
  }
  if ((o.map_flags & arena_flags::mmapable) == 0) {
    return make_error(Errc::invalid_argument,
                      "map_flags must include BPF_F_MMAPABLE (arena_flags::mmapable)");
  }
  if ((o.map_flags & ~kAllowedFlags) != 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("map_flags 0x{:x} has unsupported bits 0x{:x}; an arena takes "
                                  "only mmapable, segv_on_fault and no_user_conv",
                                  o.map_flags, o.map_flags & ~kAllowedFlags));
  }
  if (o.map_extra % kPageSize != 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("map_extra 0x{:x} is not page aligned (4096)", o.map_extra));
  }
  const std::uint64_t range = std::uint64_t{o.max_entries} * kPageSize;
  if (range > k4GiB) {
    return make_error(Errc::too_big,
                      fmt::format("max_entries {} is {} bytes; an arena holds at most 4 GiB "
                                  "({} pages)",
                                  o.max_entries, range, kMaxArenaPages));
  }
  if (o.map_extra != 0 && (o.map_extra >> 32) != ((o.map_extra + range - 1) >> 32)) {
    return make_error(Errc::out_of_range,
                      fmt::format("user range 0x{:x}..0x{:x} crosses a 4 GiB boundary; pick a "
                                  "map_extra whose range stays inside one 4 GiB-aligned block",
                                  o.map_extra, o.map_extra + range));
  }
  if (o.map_extra != 0 && o.map_extra + range > (std::uint64_t{1} << 47)) {
    return make_error(Errc::out_of_range,
                      fmt::format("map_extra 0x{:x} is not a user-space address", o.map_extra));
  }

  if (!o.name.empty()) {
    if (auto path = ArenaFile::path_of(o.name); !path) return tl::unexpected(path.error());
  }
  ArenaFile::sweep_dead_names();
  auto file = ArenaFile::create(!o.name.empty());
  if (!file) return tl::unexpected(file.error());
  std::unique_ptr<ArenaImpl> a(new ArenaImpl(std::move(*file)));
  const ControlLayout layout = ControlLayout::for_pages(o.max_entries);
  if (auto r = os::resize_file(a->file_.fd(), kControlOffset + layout.size); !r) {
    return tl::unexpected(r.error());
  }
  if (auto r = a->map_control(layout.size); !r) return tl::unexpected(r.error());

  Control* c = a->ctl_;
  c->magic = kControlMagic;
  c->version = kControlVersion;
  c->max_entries = o.max_entries;
  c->map_flags = o.map_flags;
  c->user_vm_start = o.map_extra;
  o.name.copy(c->name, kMaxNameLength);
  if (auto r = init_shared_lock(&c->lock); !r) return tl::unexpected(r.error());
  a->max_entries_ = o.max_entries;
  a->map_flags_ = o.map_flags;
  a->user_vm_start_ = o.map_extra;
  PageTable::init(*a->tree_, o.max_entries);  // before attach() starts the view server
  if (auto r = a->attach(o.map_extra == 0); !r) return tl::unexpected(r.error());
  c->user_vm_start = a->user_vm_start_;
  // Named last: an open by name sees a complete arena or none.
  if (!o.name.empty()) {
    if (auto r = a->file_.publish(o.name); !r) return tl::unexpected(r.error());
  }
  return a;
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open_named(std::string_view name) {
  ArenaFile::sweep_dead_names();
  auto file = ArenaFile::open_named(name);
  if (!file) return tl::unexpected(file.error());
  return join(std::move(*file));
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open(int fd) {
  ArenaFile::sweep_dead_names();
  auto file = ArenaFile::adopt(fd);
  if (!file) return tl::unexpected(file.error());
  return join(std::move(*file));
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::join(ArenaFile file) {
  std::unique_ptr<ArenaImpl> a(new ArenaImpl(std::move(file)));
  auto file_size = os::file_size(a->file_.fd());
  if (!file_size) return tl::unexpected(file_size.error());
  if (*file_size < kControlOffset + sizeof(Control)) {
    return make_error(Errc::invalid_argument,
                      "the descriptor is not an scxkit arena (its file is too small)");
  }
  const std::size_t control_size = static_cast<std::size_t>(*file_size - kControlOffset);
  if (auto r = a->map_control(control_size); !r) return tl::unexpected(r.error());
  Control* c = a->ctl_;
  if (c->magic != kControlMagic || c->version != kControlVersion) {
    return make_error(Errc::invalid_argument,
                      "the descriptor is not an scxkit arena of this version (bad magic)");
  }
  if (ControlLayout::for_pages(c->max_entries).size != control_size) {
    return make_error(Errc::invalid_argument, "the arena's memory file has the wrong size");
  }
  a->max_entries_ = c->max_entries;
  a->map_flags_ = c->map_flags;
  a->user_vm_start_ = c->user_vm_start;
  if (auto r = a->attach(false); !r) return tl::unexpected(r.error());
  return a;
}

Result<void> ArenaImpl::map_control(std::size_t size) {
  auto mapped = os::map_file(size, file_.fd(), kControlOffset);
  if (!mapped) return tl::unexpected(mapped.error());
  char* p = reinterpret_cast<char*>(*mapped);
  ctl_ = reinterpret_cast<Control*>(p);
  control_size_ = size;
  const ControlLayout layout = ControlLayout::for_pages(ctl_->max_entries);
  tree_ = std::make_unique<RangeTree>(&ctl_->tree,
                                      reinterpret_cast<RangeTree::Node*>(p + layout.nodes_offset));
  return {};
}

Result<void> ArenaImpl::attach(bool pick_user_address) {
  const std::size_t size = user_size();
  if (pick_user_address) {
    // Where the kernel's arena_get_unmapped_area() would put it.
    auto start = os::reserve_within_4gib(size);
    if (!start) return tl::unexpected(start.error());
    if (auto r = os::map_shared(*start, size, file_.fd(), low32(*start), true); !r) {
      os::unmap(*start, size);
      return tl::unexpected(r.error());
    }
    user_vm_start_ = *start;
  } else if (auto r =
                 os::map_shared(user_vm_start_, size, file_.fd(), low32(user_vm_start_), false);
             !r) {
    if (r.error().code == Errc::address_in_use) {
      return make_error(Errc::address_in_use,
                        fmt::format("the arena's user range 0x{:x}..0x{:x} overlaps a mapping "
                                    "that already exists in this process; pick another map_extra",
                                    user_vm_start_, user_vm_start_ + size));
    }
    return tl::unexpected(r.error());
  }
  user_mapped_ = true;
  first_page_ = static_cast<std::uint32_t>(low32(user_vm_start_) / kPageSize);
  const ControlLayout layout = ControlLayout::for_pages(max_entries_);
  pages_.emplace(reinterpret_cast<std::atomic<std::uint32_t>*>(reinterpret_cast<char*>(ctl_) +
                                                               layout.slots_offset),
                 kSlotCount, tree_.get(), &ctl_->pages, first_page_, max_entries_);

  auto kern = os::reserve(kKernViewSize);
  if (!kern) return tl::unexpected(kern.error());
  kern_reserve_ = *kern;
  kern_vm_start_ = kern_reserve_ + kGuardSize / 2;
  if (auto r = os::map_shared(kern_vm_start_, kKernMappedSize, file_.fd(), 0, true); !r) {
    return tl::unexpected(r.error());
  }
  owner_pid_ = os::current_pid();
  // Nothing is guarded up front (that cost ~8 MiB of page tables per arena):
  // pages the file lacks are missing-page events for the view server, which
  // installs guard markers only where an access must fault. Make sure this
  // kernel has them, on a page of the upper half-guard that never holds data.
  const std::uintptr_t probe = kern_vm_start_ + kKernMappedSize - kPageSize;
  if (int e = os::guard_install(probe, kPageSize); e != 0) {
    return os_error("installing guard markers (needs Linux 6.13+ MADV_GUARD_INSTALL)", e);
  }
  if (int e = os::guard_remove(probe, kPageSize); e != 0) {
    return os_error("removing guard markers (MADV_GUARD_REMOVE)", e);
  }
  if (auto r = install_fault_handler(); !r) return r;
  if (auto r = register_fault_claimer(this); !r) return r;
  registered_ = true;
  auto server = ViewServer::start(*this, {user_vm_start_, size}, {kern_vm_start_, kKernMappedSize});
  if (!server) return tl::unexpected(server.error());
  server_ = std::move(*server);
  return {};
}

ArenaImpl::~ArenaImpl() {
  teardown();
}

void ArenaImpl::release_all_pages(PauseStats& pauses) {
  // The last user: no user maps the file any more and none can join, so no
  // lock is needed. Slices keep each step short where the file holds much.
  // The punch only returns memory early, while forked children or passed
  // descriptors still hold the file; a slice the OS keeps goes with the
  // file's last descriptor (the name is removed below).
  in_growing_slices(kKernMappedSize, pauses, [&](std::uint64_t off, std::uint64_t n) {
    (void)os::punch_hole(file_.fd(), off, n);
  });
}

void ArenaImpl::unmap_views(PauseStats& pauses) {
  // munmap of a populated range holds this process's mmap lock for its whole
  // length; slices keep every other thread's page faults moving.
  if (user_mapped_) {
    in_growing_slices(user_size(), pauses, [&](std::uint64_t off, std::uint64_t n) {
      os::unmap(user_vm_start_ + off, n);
    });
  }
  if (kern_reserve_ != 0) {
    in_growing_slices(kKernViewSize, pauses, [&](std::uint64_t off, std::uint64_t n) {
      os::unmap(kern_reserve_ + off, n);
    });
  }
  user_mapped_ = false;
  kern_reserve_ = 0;
}

PauseStats ArenaImpl::teardown() {
  PauseStats pauses{};
  // Calls racing this one finish first; later ones fail cleanly.
  if (!gate_.close()) return pauses;
  server_.reset();
  if (registered_) unregister_fault_claimer(this);
  unmap_views(pauses);
  // Only the process that opened the arena is its user: a forked child that
  // drops its copy just lets go of its descriptors.
  if (owner_pid_ == os::current_pid() && ctl_ != nullptr && file_.leave_as_last()) {
    release_all_pages(pauses);
    if (ctl_->name[0] != '\0') {
      file_.unlink_name(std::string_view(ctl_->name, strnlen(ctl_->name, kMaxNameLength)));
    }
  }
  if (ctl_ != nullptr) os::unmap(reinterpret_cast<std::uintptr_t>(ctl_), control_size_);
  ctl_ = nullptr;
  file_.release();
  return pauses;
}

}  // namespace scxkit::internal
