#include "arena/emulated/arena_impl.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "arena/os.hpp"
#include "arena/page_args.hpp"

namespace scxkit::internal {

namespace {

constexpr std::uint32_t kAllowedFlags =
    arena_flags::mmapable | arena_flags::segv_on_fault | arena_flags::no_user_conv;
// Work done in one hold of the lock, bounded in pages and in time so a huge
// free or a teardown never stalls other users for long.
constexpr std::uint32_t kChunkPages = 128;
constexpr std::uint64_t kMaxHoldNs = 150'000;
constexpr std::size_t kUnmapChunk = std::size_t{512} << 10;

std::uint64_t low32(std::uint64_t v) {
  return v & 0xffff'ffffull;
}

Result<std::string> shm_path(std::string_view name) {
  if (name.empty() || name.size() > 200 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    return make_error(Errc::invalid_argument,
                      fmt::format("arena name '{}' is not valid: use 1-200 characters from "
                                  "[A-Za-z0-9._-]",
                                  name));
  }
  return fmt::format("/scxkit-arena.{}", name);
}

// Calls fn(first, count) for each maximal run of [begin, end) where pred holds.
template <class Pred, class Fn>
void for_each_run(std::uint32_t begin, std::uint32_t end, Pred pred, Fn fn) {
  std::uint32_t i = begin;
  while (i < end) {
    while (i < end && !pred(i)) ++i;
    const std::uint32_t first = i;
    while (i < end && pred(i)) ++i;
    if (i > first) fn(first, i - first);
  }
}

}  // namespace

Result<ArenaImpl::Lock> ArenaImpl::lock(bool may_sleep) const {
  if (torn_down_) {
    return make_error(Errc::invalid_argument,
                      "the arena was torn down in this process; create or open it again");
  }
  int rc = 0;
  if (may_sleep) {
    ctl_->lock_waiters.fetch_add(1);
    rc = pthread_mutex_lock(&ctl_->lock);
    ctl_->lock_waiters.fetch_sub(1);
  } else {
    rc = pthread_mutex_trylock(&ctl_->lock);
  }
  if (rc == EOWNERDEAD) {
    // A process died holding the lock, maybe halfway through a change.
    repair_after_owner_death();
    pthread_mutex_consistent(&ctl_->lock);
    rc = 0;
  }
  if (rc == EBUSY) {
    return make_error(Errc::busy,
                      "the arena lock is held by another thread; "
                      "retry, or use the sleeping call where blocking is allowed");
  }
  if (rc != 0) return os_error("locking the arena", rc);
  ctl_->lock_acquisitions.fetch_add(1);
  replay_lazy_faults();
  return Lock(&ctl_->lock);
}

void ArenaImpl::repair_after_owner_death() const {
  // Transitions the dead process made under the lock will never finish:
  // finish them its way (an unfinished allocation or free leaves the page
  // free and zeroed). Transitions fault handlers make without the lock are
  // left to their live owners. Then rebuild the index and counters from the slots.
  std::uint64_t allocated = 0, reserved = 0, scratch = 0;
  for (std::uint32_t p = 0; p < kSlotCount; ++p) {
    std::uint32_t seen = slot(p).load();
    if (changing_under_lock(seen)) {
      os::punch_hole(fd_, std::uint64_t{p} * kPageSize, kPageSize);
      slot(p).compare_exchange_strong(seen,
                                      seen == kSlotClaimedScratch ? kSlotScratch : kSlotEmpty);
      seen = slot(p).load();
    }
    allocated += seen == kSlotAllocated;
    reserved += seen == kSlotReserved;
    scratch += holds_scratch(seen);
  }
  tree_->reset(RangeTree::nodes_needed(max_entries_));
  for_each_run(
      first_page_, first_page_ + max_entries_,
      [&](std::uint32_t p) {
        const std::uint32_t s = slot(p).load();
        return s != kSlotAllocated && s != kSlotReserved;
      },
      [&](std::uint32_t p, std::uint32_t n) { tree_->set(p - first_page_, n); });
  ctl_->allocated_pages.store(allocated);
  ctl_->reserved_pages.store(reserved);
  ctl_->scratch_pages.store(scratch);
}

template <class Step>
Result<void> ArenaImpl::in_lock_slices(PauseStats& pauses, Step step) {
  for (bool more = true; more;) {
    {
      auto guard = lock(true);
      if (!guard) return tl::unexpected(guard.error());
      const std::uint64_t t0 = os::monotonic_ns();
      do {
        more = step();
      } while (more && os::monotonic_ns() - t0 < kMaxHoldNs);
      pauses.record(os::monotonic_ns() - t0);
    }
    if (more) let_waiters_in();
  }
  return {};
}

void ArenaImpl::let_waiters_in() const {
  // Called with the lock released: wait until a waiter has had its turn, for
  // at most a couple of milliseconds (a waiter may have given up meanwhile).
  const std::uint64_t seen = ctl_->lock_acquisitions.load();
  const std::uint64_t deadline = os::monotonic_ns() + 2'000'000;
  while (ctl_->lock_waiters.load() != 0 && ctl_->lock_acquisitions.load() == seen &&
         os::monotonic_ns() < deadline) {
    sched_yield();
  }
}

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

  std::unique_ptr<ArenaImpl> a(new ArenaImpl());
  if (o.name.empty()) {
    a->fd_ = memfd_create("scxkit-arena", MFD_CLOEXEC);
    if (a->fd_ < 0) return os_error("memfd_create for the arena", errno);
  } else {
    auto path = shm_path(o.name);
    if (!path) return tl::unexpected(path.error());
    a->fd_ = shm_open(path->c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (a->fd_ < 0 && errno == EEXIST) {
      return make_error(Errc::already_exists,
                        fmt::format("an arena named '{}' exists already; open it with "
                                    "Arena::open, or choose another name",
                                    o.name));
    }
    if (a->fd_ < 0) return os_error(fmt::format("shm_open {}", *path), errno);
    a->shm_name_ = *path;
  }
  const ControlLayout layout = ControlLayout::for_pages(o.max_entries);
  if (ftruncate(a->fd_, static_cast<off_t>(kControlOffset + layout.size)) != 0) {
    return os_error("sizing the arena's memory file", errno);
  }
  if (auto r = a->map_control(layout.size); !r) return tl::unexpected(r.error());

  Control* c = a->ctl_;
  c->version = kControlVersion;
  c->max_entries = o.max_entries;
  c->map_flags = o.map_flags;
  c->user_vm_start = o.map_extra;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&c->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  c->open_count.store(1);
  a->counted_ = true;
  a->max_entries_ = o.max_entries;
  a->map_flags_ = o.map_flags;
  a->user_vm_start_ = o.map_extra;
  a->tree_->reset(RangeTree::nodes_needed(o.max_entries));
  a->tree_->set(0, o.max_entries);

  if (auto r = a->attach(o.map_extra == 0); !r) return tl::unexpected(r.error());
  c->user_vm_start = a->user_vm_start_;
  // Published last: a process opening by name sees a complete header or none.
  std::atomic_ref<std::uint64_t>(c->magic).store(kControlMagic, std::memory_order_release);
  return a;
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open_named(std::string_view name) {
  auto path = shm_path(name);
  if (!path) return tl::unexpected(path.error());
  const int fd = shm_open(path->c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0 && errno == ENOENT) {
    return make_error(Errc::not_found,
                      fmt::format("no arena named '{}' exists; create it first with "
                                  "ArenaOptions::name",
                                  name));
  }
  if (fd < 0) return os_error(fmt::format("shm_open {}", *path), errno);
  return open(fd, *path);
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open(int fd, std::string shm_name) {
  std::unique_ptr<ArenaImpl> a(new ArenaImpl());
  a->fd_ = fd;
  a->shm_name_ = std::move(shm_name);
  struct stat st {};
  if (fstat(fd, &st) != 0) return os_error("fstat on the arena descriptor", errno);
  if (static_cast<std::uint64_t>(st.st_size) < kControlOffset + sizeof(Control)) {
    return make_error(Errc::invalid_argument,
                      "the descriptor is not an scxkit arena (its file is too small)");
  }
  const std::size_t control_size = static_cast<std::size_t>(st.st_size - kControlOffset);
  if (auto r = a->map_control(control_size); !r) return tl::unexpected(r.error());
  Control* c = a->ctl_;
  if (std::atomic_ref<std::uint64_t>(c->magic).load(std::memory_order_acquire) != kControlMagic ||
      c->version != kControlVersion) {
    return make_error(Errc::invalid_argument,
                      "the descriptor is not an scxkit arena of this version (bad magic)");
  }
  if (ControlLayout::for_pages(c->max_entries).size != control_size) {
    return make_error(Errc::invalid_argument, "the arena's memory file has the wrong size");
  }
  // Join only a live arena: never resurrect one whose last user is tearing it down.
  std::uint32_t users = c->open_count.load();
  do {
    if (users == 0) {
      return make_error(Errc::not_found, "the arena is being destroyed by its last user");
    }
  } while (!c->open_count.compare_exchange_weak(users, users + 1));
  a->max_entries_ = c->max_entries;
  a->map_flags_ = c->map_flags;
  a->user_vm_start_ = c->user_vm_start;
  a->counted_ = true;
  if (auto r = a->attach(false); !r) return tl::unexpected(r.error());
  return a;
}

Result<void> ArenaImpl::map_control(std::size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_,
                 static_cast<off_t>(kControlOffset));
  if (p == MAP_FAILED) return os_error("mapping the arena's control block", errno);
  ctl_ = static_cast<Control*>(p);
  control_size_ = size;
  const ControlLayout layout = ControlLayout::for_pages(ctl_->max_entries);
  slots_ =
      reinterpret_cast<std::atomic<std::uint32_t>*>(static_cast<char*>(p) + layout.slots_offset);
  tree_ = std::make_unique<RangeTree>(
      &ctl_->tree, reinterpret_cast<RangeTree::Node*>(static_cast<char*>(p) + layout.nodes_offset));
  return {};
}

Result<void> ArenaImpl::attach(bool pick_user_address) {
  const std::size_t size = user_size();
  if (pick_user_address) {
    // Like the kernel's arena_get_unmapped_area(): take twice the size and use
    // the start, or the next 4 GiB boundary when the start would cross one.
    auto span = os::reserve(2 * size);
    if (!span) return tl::unexpected(span.error());
    std::uint64_t start = *span;
    if ((start >> 32) != ((start + size - 1) >> 32)) start = (start + k4GiB - 1) & ~(k4GiB - 1);
    if (auto r = os::map_shared(start, size, fd_, low32(start), true); !r) {
      os::unmap(*span, 2 * size);
      return tl::unexpected(r.error());
    }
    os::unmap(*span, start - *span);
    os::unmap(start + size, *span + 2 * size - (start + size));
    user_vm_start_ = start;
  } else if (auto r = os::map_shared(user_vm_start_, size, fd_, low32(user_vm_start_), false); !r) {
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

  auto kern = os::reserve(kKernViewSize);
  if (!kern) return tl::unexpected(kern.error());
  kern_reserve_ = *kern;
  kern_vm_start_ = kern_reserve_ + kGuardSize / 2;
  if (auto r = os::map_shared(kern_vm_start_, kKernMappedSize, fd_, 0, true); !r) {
    return tl::unexpected(r.error());
  }
  // Every page starts guarded in both views of this process: a first access
  // faults, and the handler maps the page if the slot holds one.
  if (int e = os::guard_install(user_vm_start_, size); e != 0) {
    return os_error("installing guard markers (needs Linux 6.13+ MADV_GUARD_INSTALL)", e);
  }
  if (int e = os::guard_install(kern_vm_start_, kKernMappedSize); e != 0) {
    return os_error("installing guard markers (needs Linux 6.13+ MADV_GUARD_INSTALL)", e);
  }
  if (auto r = install_fault_handler(); !r) return r;
  if (auto r = join_attached(); !r) return r;
  if (auto r = register_fault_claimer(this); !r) return r;
  registered_ = true;
  return {};
}

ArenaImpl::~ArenaImpl() {
  teardown();
}

std::uintptr_t ArenaImpl::page_addr(View v, std::uint32_t abs) const {
  return v == View::kern ? kern_vm_start_ + std::uint64_t{abs} * kPageSize
                         : user_vm_start_ + std::uint64_t{abs - first_page_} * kPageSize;
}

Result<std::uint32_t> ArenaImpl::pgoff_of(std::uint64_t addr, std::uint32_t count,
                                          const char* what) const {
  return page_index({user_vm_start_, max_entries_}, addr, count, what);
}

bool ArenaImpl::claim_range(std::uint32_t pgoff, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    auto& s = slot(abs_page(pgoff + i));
    for (;;) {
      std::uint32_t seen = kSlotEmpty;
      if (s.compare_exchange_strong(seen, kSlotClaimed)) break;
      if (seen == kSlotScratch && s.compare_exchange_strong(seen, kSlotClaimedScratch)) break;
      if (seen == kSlotMappingScratch || seen == kSlotEvicting) {
        sched_yield();  // a fault handler finishes with the scratch page first
        continue;
      }
      if (seen == kSlotEmpty || seen == kSlotScratch) continue;  // lost a race; look again
      // A user-view fault allocated this page after the tree last saw it free:
      // give back what was claimed and teach the tree.
      for (std::uint32_t j = 0; j < i; ++j) {
        auto& back = slot(abs_page(pgoff + j));
        back.store(back.load() == kSlotClaimedScratch ? kSlotScratch : kSlotEmpty);
      }
      tree_->clear(pgoff + i, 1);
      return false;
    }
  }
  return true;
}

Result<std::uint64_t> ArenaImpl::alloc(std::uint64_t addr, std::uint32_t count, int node,
                                       bool may_sleep) {
  if (auto ok = check_alloc_args({user_vm_start_, max_entries_}, count, node); !ok) {
    return tl::unexpected(ok.error());
  }
  std::uint32_t want = 0;
  if (addr != 0) {
    auto p = pgoff_of(addr, count, "alloc_pages");
    if (!p) return tl::unexpected(p.error());
    want = *p;
  }
  auto guard = lock(may_sleep);
  if (!guard) return tl::unexpected(guard.error());

  std::uint32_t pgoff = 0;
  for (;;) {
    if (addr != 0) {
      if (!tree_->is_set(want, count)) {
        return make_error(Errc::busy, fmt::format("alloc_pages: pages 0x{:x}..+{} are not all free",
                                                  addr, count));
      }
      pgoff = want;
    } else if (auto fit = tree_->find(count)) {
      pgoff = *fit;
    } else {
      return make_error(
          Errc::no_space,
          fmt::format("alloc_pages: no run of {} free pages left in the arena", count));
    }
    if (claim_range(pgoff, count)) break;
  }
  tree_->clear(pgoff, count);

  const std::uint32_t first = abs_page(pgoff);
  // Replacing scratch: guard the kernel view first so a stray access in flight
  // faults and waits, then zero the page. Once the slots read allocated below,
  // every view sees the same fresh page.
  std::uint64_t scratch_replaced = 0;
  for_each_run(
      first, first + count, [&](std::uint32_t p) { return slot(p).load() == kSlotClaimedScratch; },
      [&](std::uint32_t p, std::uint32_t n) {
        os::guard_install(page_addr(View::kern, p), std::size_t{n} * kPageSize);
        os::punch_hole(fd_, std::uint64_t{p} * kPageSize, std::uint64_t{n} * kPageSize);
        scratch_replaced += n;
      });
  for (std::uint32_t p = first; p < first + count; ++p) slot(p).store(kSlotAllocated);
  os::guard_remove(page_addr(View::user, first), std::size_t{count} * kPageSize);
  os::guard_remove(page_addr(View::kern, first), std::size_t{count} * kPageSize);
  ctl_->scratch_pages.fetch_sub(scratch_replaced);
  ctl_->allocated_pages.fetch_add(count);
  return user_vm_start_ + std::uint64_t{pgoff} * kPageSize;
}

void ArenaImpl::free_chunk(std::uint32_t pgoff, std::uint32_t count) {
  const std::uint32_t first = abs_page(pgoff), end = first + count;
  std::uint64_t freed = 0, unreserved = 0;
  for (std::uint32_t p = first; p < end; ++p) {
    std::uint32_t seen = kSlotAllocated;
    if (slot(p).compare_exchange_strong(seen, kSlotFreeing)) {
      ++freed;
    } else if (seen == kSlotReserved && slot(p).compare_exchange_strong(seen, kSlotEmpty)) {
      ++unreserved;
      tree_->set(p - first_page_, 1);
    } else if (holds_scratch(seen)) {
      // Scratch stays (never freed as data), but the page is allocatable again
      // even if it was reserved before a stray access scratched it.
      tree_->set(p - first_page_, 1);
    }
  }
  // Guard before punching: once the memory is gone no access in this process
  // may silently back it again. Scratch pages are skipped, as the kernel does.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;
  for_each_run(
      first, end, [&](std::uint32_t p) { return slot(p).load() == kSlotFreeing; },
      [&](std::uint32_t p, std::uint32_t n) {
        const std::size_t bytes = std::size_t{n} * kPageSize;
        os::guard_install(page_addr(View::user, p), bytes);
        os::guard_install(page_addr(View::kern, p), bytes);
        os::punch_hole(fd_, std::uint64_t{p} * kPageSize, bytes);
        runs.emplace_back(p, n);
      });
  // Other processes: until they guard too, a write there could back the page
  // again behind the allocator's back; punch once more after they have.
  if (!runs.empty() && shoot_down(runs)) {
    for (auto [p, n] : runs) {
      os::punch_hole(fd_, std::uint64_t{p} * kPageSize, std::uint64_t{n} * kPageSize);
    }
  }
  for (auto [p, n] : runs) {
    for (std::uint32_t i = p; i < p + n; ++i) slot(i).store(kSlotEmpty);
    tree_->set(p - first_page_, n);
  }
  ctl_->allocated_pages.fetch_sub(freed);
  ctl_->reserved_pages.fetch_sub(unreserved);
}

bool ArenaImpl::shoot_down(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& runs) {
  const pid_t self = getpid();
  bool others = false;
  for (const auto& a : ctl_->attached) {
    const pid_t pid = a.pid.load();
    others = others || (pid != 0 && pid != self);
  }
  if (!others) return false;
  std::uint64_t seq = ctl_->free_seq.load();
  for (auto [p, n] : runs) {
    FreeRecord& r = ctl_->free_log[++seq % kFreeLogSize];
    r.seq.store(0);  // a reader that races this write sees a stale record and resyncs fully
    r.first_page.store(p);
    r.pages.store(n);
    r.seq.store(seq, std::memory_order_release);
  }
  ctl_->free_seq.store(seq, std::memory_order_release);
  // Ask each other process once, then wait for all of them, at most 100 ms:
  // a process that blocks the signal or is stopped must not stall us.
  for (auto& a : ctl_->attached) {
    const pid_t pid = a.pid.load();
    if (pid == 0 || pid == self || a.synced_seq.load() >= seq) continue;
    if (!request_view_sync(pid)) {
      std::int32_t gone = pid;
      a.pid.compare_exchange_strong(gone, 0);  // it died without detaching
    }
  }
  const std::uint64_t deadline = os::monotonic_ns() + 100'000'000;
  for (auto& a : ctl_->attached) {
    for (;;) {
      const pid_t pid = a.pid.load();
      if (pid == 0 || pid == self || a.synced_seq.load(std::memory_order_acquire) >= seq) break;
      if (os::monotonic_ns() >= deadline) break;
      sched_yield();
    }
  }
  return true;
}

void ArenaImpl::guard_everything() noexcept {
  // Allocated pages fault once more and are mapped again by the handler.
  os::guard_install(user_vm_start_, user_size());
  os::guard_install(kern_vm_start_, kKernMappedSize);
}

void ArenaImpl::sync_views() noexcept {
  if (attached_slot_ < 0) return;
  AttachedProcess& me = ctl_->attached[attached_slot_];
  const std::uint64_t target = ctl_->free_seq.load(std::memory_order_acquire);
  std::uint64_t seq = me.synced_seq.load();
  if (seq >= target) return;
  if (target - seq > kFreeLogSize) {
    guard_everything();
  } else {
    for (++seq; seq <= target; ++seq) {
      const FreeRecord& r = ctl_->free_log[seq % kFreeLogSize];
      const std::uint32_t p = r.first_page.load(), n = r.pages.load();
      if (r.seq.load(std::memory_order_acquire) != seq) {  // overwritten meanwhile
        guard_everything();
        break;
      }
      os::guard_install(page_addr(View::user, p), std::size_t{n} * kPageSize);
      os::guard_install(page_addr(View::kern, p), std::size_t{n} * kPageSize);
    }
  }
  me.synced_seq.store(target, std::memory_order_release);
}

Result<void> ArenaImpl::join_attached() {
  const pid_t self = getpid();
  for (std::uint32_t i = 0; i < kMaxAttachedProcesses; ++i) {
    AttachedProcess& a = ctl_->attached[i];
    std::int32_t pid = a.pid.load();
    if (pid != 0 && kill(pid, 0) != 0 && errno == ESRCH) {
      a.pid.compare_exchange_strong(pid, 0);  // a process that died without detaching
      pid = 0;
    }
    if (pid == 0 && a.pid.compare_exchange_strong(pid, self)) {
      a.synced_seq.store(ctl_->free_seq.load());
      attached_slot_ = static_cast<int>(i);
      return {};
    }
  }
  return make_error(Errc::no_space,
                    fmt::format("more than {} processes have this arena open; close it in some",
                                kMaxAttachedProcesses));
}

Result<PauseStats> ArenaImpl::free(std::uint64_t addr, std::uint32_t count) {
  // As bpf_arena_free_pages(): low 32 bits, page aligned, clipped to the user range.
  std::uint64_t off = low32(addr) & ~std::uint64_t{kPageSize - 1};
  std::uint64_t end = off + std::uint64_t{count} * kPageSize;
  const std::uint64_t lo = low32(user_vm_start_), hi = lo + user_size();
  off = std::max(off, lo);
  end = std::min(end, hi);
  PauseStats pauses{};
  std::uint32_t pgoff = static_cast<std::uint32_t>((off - lo) / kPageSize);
  const std::uint32_t last = off < end ? static_cast<std::uint32_t>((end - lo) / kPageSize) : pgoff;
  if (pgoff == last) return pauses;
  auto done = in_lock_slices(pauses, [&] {
    const std::uint32_t n = std::min(kChunkPages, last - pgoff);
    free_chunk(pgoff, n);
    pgoff += n;
    return pgoff < last;
  });
  if (!done) return tl::unexpected(done.error());
  return pauses;
}

Result<void> ArenaImpl::reserve(std::uint64_t addr, std::uint32_t count) {
  if (count == 0) {
    return make_error(Errc::invalid_argument, "reserve_pages: count must be at least 1");
  }
  auto p = pgoff_of(addr, count, "reserve_pages");
  if (!p) return tl::unexpected(p.error());
  const std::uint32_t pgoff = *p;
  auto guard = lock(true);
  if (!guard) return tl::unexpected(guard.error());
  const auto busy = [&] {
    return make_error(Errc::busy, fmt::format("reserve_pages: pages 0x{:x}..+{} are not all free "
                                              "(allocated or reserved already)",
                                              addr, count));
  };
  if (!tree_->is_set(pgoff, count)) return busy();
  std::uint64_t reserved = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto& s = slot(abs_page(pgoff + i));
    std::uint32_t seen = kSlotEmpty;
    if (s.compare_exchange_strong(seen, kSlotReserved)) {
      ++reserved;
    } else if (seen != kSlotScratch) {
      // Lazily allocated behind the tree's back: undo and report it taken.
      for (std::uint32_t j = 0; j < i; ++j) {
        std::uint32_t r = kSlotReserved;
        slot(abs_page(pgoff + j)).compare_exchange_strong(r, kSlotEmpty);
      }
      tree_->clear(pgoff + i, 1);
      return busy();
    }
  }
  tree_->clear(pgoff, count);
  ctl_->reserved_pages.fetch_add(reserved);
  return {};
}

void ArenaImpl::map_page(View v, std::uint32_t abs) noexcept {
  const std::uintptr_t page = page_addr(v, abs);
  os::guard_remove(page, kPageSize);
  // A free that raced with us may have guarded the page before our removal;
  // re-check so a page that is no longer allocated never stays reachable.
  if (slot(abs).load() != kSlotAllocated) os::guard_install(page, kPageSize);
}

bool ArenaImpl::claim_user_fault(std::uint32_t abs) noexcept {
  auto& s = slot(abs);
  for (;;) {
    std::uint32_t seen = s.load();
    if (seen == kSlotAllocated) {
      map_page(View::user, abs);
      return true;
    }
    if (changing_under_lock(seen)) {
      sched_yield();  // a change is landing; retry the access after it
      return true;
    }
    if (holds_scratch(seen)) return false;  // never lazily allocated over
    // Empty or reserved: no page, so allocate one lazily unless told to fault.
    if ((map_flags_ & arena_flags::segv_on_fault) != 0) return false;
    if (!s.compare_exchange_strong(seen, kSlotAllocated)) continue;
    // The page is a hole in the file, so it reads zero.
    ctl_->allocated_pages.fetch_add(1);
    ctl_->lazy_faults.fetch_add(1);
    log_lazy_fault(abs);
    if (seen == kSlotReserved) ctl_->reserved_pages.fetch_sub(1);
    map_page(View::user, abs);
    return true;
  }
}

bool ArenaImpl::claim_fault(const FaultInfo& fault) noexcept {
  if (fault.addr >= user_vm_start_ && fault.addr < user_vm_end()) {
    return claim_user_fault(first_page_ +
                            static_cast<std::uint32_t>((fault.addr - user_vm_start_) / kPageSize));
  }
  if (fault.addr >= kern_vm_start_ && fault.addr < kern_vm_start_ + kKernMappedSize) {
    return claim_kern_fault(static_cast<std::uint32_t>((fault.addr - kern_vm_start_) / kPageSize),
                            fault);
  }
  return false;
}

PageState ArenaImpl::page_state(std::uint32_t off) const {
  if (torn_down_ || off / kPageSize >= kSlotCount) return PageState::empty;
  const std::uint32_t s = slot(off / kPageSize).load();
  if (holds_scratch(s)) return PageState::scratch;
  switch (s) {
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

void ArenaImpl::log_lazy_fault(std::uint32_t abs) noexcept {
  const std::uint64_t seq = ctl_->lazy_seq.fetch_add(1) + 1;
  LazyRecord& r = ctl_->lazy_log[seq % kLazyLogSize];
  r.seq.store(0);
  r.page.store(abs);
  r.seq.store(seq, std::memory_order_release);
}

void ArenaImpl::replay_lazy_faults() const {
  const std::uint64_t target = ctl_->lazy_seq.load(std::memory_order_acquire);
  bool missed = false;
  for (std::uint64_t seq = ctl_->lazy_replayed + 1; seq <= target; ++seq) {
    const LazyRecord& r = ctl_->lazy_log[seq % kLazyLogSize];
    const std::uint32_t p = r.page.load();
    if (r.seq.load(std::memory_order_acquire) != seq) {
      missed = true;  // overwritten (over kLazyLogSize faults since) or still being written
      continue;
    }
    // Freed since (the free put it back in the tree itself) or already out: nothing to do.
    if (slot(p).load() == kSlotAllocated && tree_->is_set(p - first_page_, 1)) {
      tree_->clear(p - first_page_, 1);
    }
  }
  ctl_->lazy_replayed = target;
  // Order lost for some: catch them in page order (placement may then differ
  // from the kernel's; it takes > kLazyLogSize faults between two locked calls).
  if (missed) reconcile_tree();
}

void ArenaImpl::reconcile_tree() const {
  // Pages taken by user-view faults stay in the tree until something looks.
  std::vector<std::uint32_t> taken;
  tree_->for_each([&](std::uint32_t start, std::uint32_t len) {
    for (std::uint32_t p = start; p < start + len; ++p) {
      if (slot(abs_page(p)).load() == kSlotAllocated) taken.push_back(p);
    }
  });
  for (std::uint32_t p : taken) tree_->clear(p, 1);
}

ArenaStats ArenaImpl::stats() const {
  ArenaStats s;
  auto guard = lock(true);
  if (!guard) return s;
  reconcile_tree();
  s.free_pages = tree_->free_pages();
  s.free_extents = tree_->extent_count();
  s.allocated_pages = ctl_->allocated_pages.load();
  s.lazy_pages = ctl_->lazy_faults.load();
  s.reserved_pages = ctl_->reserved_pages.load();
  s.scratch_pages = ctl_->scratch_pages.load();
  return s;
}

void ArenaImpl::release_all_pages(PauseStats& pauses) {
  // The last user: nobody maps the file any more, so returning memory is all
  // that is left — in bounded slices, with the lock, so a late open() waits briefly.
  constexpr std::uint64_t kSlice = std::uint64_t{kChunkPages} * kPageSize;
  std::uint64_t off = 0;
  (void)in_lock_slices(pauses, [&] {
    const std::uint64_t n = std::min(kSlice, kKernMappedSize - off);
    os::punch_hole(fd_, off, n);
    off += n;
    return off < kKernMappedSize;
  });
}

PauseStats ArenaImpl::teardown() {
  if (torn_down_) return {};
  if (registered_) unregister_fault_claimer(this);
  if (attached_slot_ >= 0) ctl_->attached[attached_slot_].pid.store(0);
  PauseStats pauses{};
  // munmap of a populated range holds this process's mmap lock for its whole
  // length; slices keep every other thread's page faults moving.
  const auto unmap_sliced = [&](std::uintptr_t start, std::size_t size) {
    for (std::size_t done = 0; done < size; done += kUnmapChunk) {
      const std::uint64_t t0 = os::monotonic_ns();
      os::unmap(start + done, std::min(kUnmapChunk, size - done));
      pauses.record(os::monotonic_ns() - t0);
      sched_yield();
    }
  };
  if (user_mapped_) unmap_sliced(user_vm_start_, user_size());
  if (kern_reserve_ != 0) unmap_sliced(kern_reserve_, kKernViewSize);
  if (counted_ && ctl_->open_count.fetch_sub(1) == 1) {
    release_all_pages(pauses);
    if (!shm_name_.empty()) shm_unlink(shm_name_.c_str());
  }
  if (ctl_ != nullptr) munmap(ctl_, control_size_);
  if (fd_ >= 0) close(fd_);
  ctl_ = nullptr;
  fd_ = -1;
  torn_down_ = true;
  return pauses;
}

}  // namespace scxkit::internal
