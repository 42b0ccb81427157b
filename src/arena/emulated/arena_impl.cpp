#include "arena/emulated/arena_impl.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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
// A sleeping lock call waits in slices of kLockSliceNs, each ending with a
// fresh try: a waiter SIGKILLed just as the holder's unlock woke it takes that
// wake-up with it (an unlock wakes one sleeper), and without slices the other
// sleepers would sleep on with the lock free (seen as stalls of minutes when
// a process was killed mid-operation). Holds are bounded (kMaxHoldNs), so a
// lock still held after kLockDeadlineNs has a stuck holder.
constexpr std::uint64_t kLockSliceNs = 50'000'000;
constexpr std::uint64_t kLockDeadlineNs = 30'000'000'000;
constexpr std::size_t kUnmapChunk = std::size_t{512} << 10;
constexpr std::size_t kMaxUnmapChunk = std::size_t{256} << 20;

std::uint64_t low32(std::uint64_t v) {
  return v & 0xffff'ffffull;
}

}  // namespace

Result<CallGate::Pass> ArenaImpl::enter() const {
  CallGate::Pass pass = gate_.enter();
  if (!pass) {
    return make_error(Errc::invalid_argument,
                      "the arena was torn down in this process; create or open it again");
  }
  return pass;
}

Result<ArenaImpl::Lock> ArenaImpl::lock(bool may_sleep) const {
  auto pass = enter();
  if (!pass) return tl::unexpected(pass.error());
  int rc = pthread_mutex_trylock(&ctl_->lock);
  if (rc == EBUSY && may_sleep) {
    const std::uint64_t deadline = os::monotonic_ns() + kLockDeadlineNs;
    for (std::uint64_t now = os::monotonic_ns(); rc == EBUSY || rc == ETIMEDOUT;
         now = os::monotonic_ns()) {
      if (now >= deadline) {
        return make_error(Errc::busy, fmt::format("the arena lock stayed held for over {} s; "
                                                  "the process holding it is stuck",
                                                  kLockDeadlineNs / 1'000'000'000));
      }
      rc = os::mutex_lock_until(&ctl_->lock, std::min(deadline, now + kLockSliceNs));
    }
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
  return Lock(&ctl_->lock, std::move(*pass));
}

bool ArenaImpl::lock_has_waiters() const {
  // glibc's robust mutex word is the kernel's robust-futex word: owner tid
  // plus FUTEX_WAITERS while a thread sleeps on it. Kept by the kernel and
  // cleared by the next unlock, it cannot leak when a waiter is killed, as
  // a counter of our own would.
  const auto word = std::atomic_ref<int>(ctl_->lock.__data.__lock).load();
  return (static_cast<unsigned>(word) & FUTEX_WAITERS) != 0;
}

void ArenaImpl::repair_after_owner_death() const {
  // Transitions the dead process made under the lock will never finish:
  // finish them its way (an unfinished allocation or free leaves the page
  // free and zeroed). No other transitions exist. Then rebuild the index and
  // counters from the slots.
  std::uint64_t allocated = 0, reserved = 0, scratch = 0;
  for (std::uint32_t p = 0; p < kSlotCount; ++p) {
    std::uint32_t seen = slot(p).load();
    if (changing_under_lock(seen)) {
      os::punch_hole(file_.fd(), std::uint64_t{p} * kPageSize, kPageSize);
      slot(p).compare_exchange_strong(seen,
                                      seen == kSlotClaimedScratch ? kSlotScratch : kSlotEmpty);
      seen = slot(p).load();
    }
    allocated += seen == kSlotAllocated;
    reserved += seen == kSlotReserved;
    scratch += seen == kSlotScratch;
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

namespace {

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
      sched_yield();
    }
  }
}

}  // namespace

template <class Step>
Result<void> ArenaImpl::in_lock_slices(PauseStats& pauses, Step step) {
  for (bool more = true; more;) {
    bool waiters = false;
    {
      auto guard = lock(true);
      if (!guard) return tl::unexpected(guard.error());
      const std::uint64_t t0 = os::monotonic_ns();
      do {
        more = step();
      } while (more && os::monotonic_ns() - t0 < kMaxHoldNs);
      pauses.record(os::monotonic_ns() - t0);
      waiters = lock_has_waiters();  // the unlock clears the mark
    }
    if (more && waiters) let_waiters_in();
  }
  return {};
}

void ArenaImpl::let_waiters_in() const {
  // Called with the lock released after a hold that saw sleepers: wait until
  // one has had its turn, for at most a couple of milliseconds (it may have
  // given up or been killed meanwhile).
  const std::uint64_t seen = ctl_->lock_acquisitions.load();
  const std::uint64_t deadline = os::monotonic_ns() + 2'000'000;
  while (ctl_->lock_acquisitions.load() == seen && os::monotonic_ns() < deadline) {
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

  if (!o.name.empty()) {
    if (auto path = ArenaFile::path_of(o.name); !path) return tl::unexpected(path.error());
  }
  auto file = ArenaFile::create(!o.name.empty());
  if (!file) return tl::unexpected(file.error());
  std::unique_ptr<ArenaImpl> a(new ArenaImpl(std::move(*file)));
  const ControlLayout layout = ControlLayout::for_pages(o.max_entries);
  if (ftruncate(a->file_.fd(), static_cast<off_t>(kControlOffset + layout.size)) != 0) {
    return os_error("sizing the arena's memory file", errno);
  }
  if (auto r = a->map_control(layout.size); !r) return tl::unexpected(r.error());

  Control* c = a->ctl_;
  c->magic = kControlMagic;
  c->version = kControlVersion;
  c->max_entries = o.max_entries;
  c->map_flags = o.map_flags;
  c->user_vm_start = o.map_extra;
  o.name.copy(c->name, kMaxNameLength);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&c->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  a->max_entries_ = o.max_entries;
  a->map_flags_ = o.map_flags;
  a->user_vm_start_ = o.map_extra;
  a->tree_->reset(RangeTree::nodes_needed(o.max_entries));
  a->tree_->set(0, o.max_entries);

  if (auto r = a->attach(o.map_extra == 0); !r) return tl::unexpected(r.error());
  c->user_vm_start = a->user_vm_start_;
  // Named last: an open by name sees a complete arena or none.
  if (!o.name.empty()) {
    if (auto r = a->file_.publish(o.name); !r) return tl::unexpected(r.error());
  }
  return a;
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open_named(std::string_view name) {
  auto file = ArenaFile::open_named(name);
  if (!file) return tl::unexpected(file.error());
  return join(std::move(*file));
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::open(int fd) {
  auto file = ArenaFile::adopt(fd);
  if (!file) return tl::unexpected(file.error());
  return join(std::move(*file));
}

Result<std::unique_ptr<ArenaImpl>> ArenaImpl::join(ArenaFile file) {
  std::unique_ptr<ArenaImpl> a(new ArenaImpl(std::move(file)));
  struct stat st {};
  if (fstat(a->file_.fd(), &st) != 0) return os_error("fstat on the arena descriptor", errno);
  if (static_cast<std::uint64_t>(st.st_size) < kControlOffset + sizeof(Control)) {
    return make_error(Errc::invalid_argument,
                      "the descriptor is not an scxkit arena (its file is too small)");
  }
  const std::size_t control_size = static_cast<std::size_t>(st.st_size - kControlOffset);
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
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, file_.fd(),
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
    if (auto r = os::map_shared(start, size, file_.fd(), low32(start), true); !r) {
      os::unmap(*span, 2 * size);
      return tl::unexpected(r.error());
    }
    os::unmap(*span, start - *span);
    os::unmap(start + size, *span + 2 * size - (start + size));
    user_vm_start_ = start;
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

  auto kern = os::reserve(kKernViewSize);
  if (!kern) return tl::unexpected(kern.error());
  kern_reserve_ = *kern;
  kern_vm_start_ = kern_reserve_ + kGuardSize / 2;
  if (auto r = os::map_shared(kern_vm_start_, kKernMappedSize, file_.fd(), 0, true); !r) {
    return tl::unexpected(r.error());
  }
  owner_pid_ = getpid();
  // Nothing is guarded up front (that cost ~8 MiB of page tables per arena):
  // pages the file lacks are missing-page events for the view server, which
  // installs guard markers only where an access must fault. Make sure this
  // kernel has them, on a page of the upper half-guard that never holds data.
  const std::uintptr_t probe = kern_vm_start_ + kKernMappedSize - kPageSize;
  if (int e = os::guard_install(probe, kPageSize); e != 0) {
    return os_error("installing guard markers (needs Linux 6.13+ MADV_GUARD_INSTALL)", e);
  }
  os::guard_remove(probe, kPageSize);
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
      if (seen == kSlotEmpty || seen == kSlotScratch) continue;  // lost a race; look again
      // Taken behind the tree's back (every writer keeps the tree in step, so
      // only a damaged control block gets here): give back what was claimed,
      // teach the tree.
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
  // Whatever the file holds there (scratch, a stray late write) goes: punch
  // the range out (which also zaps it in every process), then give it fresh
  // zeroed pages so every process's first access is an ordinary minor fault.
  // A scratch eviction in flight finishes first; in this process a stray
  // access in flight meets a guard and waits for the slot to settle.
  std::uint64_t scratch_replaced = 0;
  for_each_run(
      first, first + count, [&](std::uint32_t p) { return slot(p).load() == kSlotClaimedScratch; },
      [&](std::uint32_t p, std::uint32_t n) {
        os::guard_install(page_addr(View::kern, p), std::size_t{n} * kPageSize);
        scratch_replaced += n;
      });
  file_.lock_slots_for_allocation(first, count);
  os::punch_hole(file_.fd(), std::uint64_t{first} * kPageSize, std::uint64_t{count} * kPageSize);
  back(first, count);
  for (std::uint32_t p = first; p < first + count; ++p) slot(p).store(kSlotAllocated);
  file_.unlock_slots(false, first, count);
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
    } else if (seen == kSlotScratch) {
      // Scratch stays (never freed as data), but the page is allocatable again
      // even if it was reserved before a stray access scratched it.
      tree_->set(p - first_page_, 1);
    }
  }
  // Punching the pages out of the file zaps them in every process's views at
  // once, as the kernel zaps every mapping of a freed arena page: a later
  // access anywhere is a missing-page event, resolved by the kernel's rules
  // (a lazy zeroed page, or SIGSEGV). Scratch pages are skipped, as the kernel does.
  for_each_run(
      first, end, [&](std::uint32_t p) { return slot(p).load() == kSlotFreeing; },
      [&](std::uint32_t p, std::uint32_t n) {
        os::punch_hole(file_.fd(), std::uint64_t{p} * kPageSize, std::uint64_t{n} * kPageSize);
        for (std::uint32_t i = p; i < p + n; ++i) slot(i).store(kSlotEmpty);
        tree_->set(p - first_page_, n);
      });
  ctl_->allocated_pages.fetch_sub(freed);
  ctl_->reserved_pages.fetch_sub(unreserved);
}

Result<PauseStats> ArenaImpl::free(std::uint64_t addr, std::uint32_t count) {
  // As bpf_arena_free_pages(): NULL is nothing to free (even where offset 0 is
  // a page); otherwise low 32 bits, page aligned, clipped to the user range.
  if (addr == 0) return PauseStats{};
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
      // Allocated behind the tree's back: undo and report it taken.
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

PageState ArenaImpl::page_state(std::uint32_t off) const {
  const CallGate::Pass pass = gate_.enter();
  if (!pass || off / kPageSize >= kSlotCount) return PageState::empty;
  switch (slot(off / kPageSize).load()) {
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

ArenaStats ArenaImpl::stats() const {
  ArenaStats s;
  auto guard = lock(true);
  if (!guard) return s;
  s.free_pages = tree_->free_pages();
  s.free_extents = tree_->extent_count();
  s.allocated_pages = ctl_->allocated_pages.load();
  s.lazy_pages = ctl_->lazy_faults.load();
  s.reserved_pages = ctl_->reserved_pages.load();
  s.scratch_pages = ctl_->scratch_pages.load();
  return s;
}

void ArenaImpl::release_all_pages(PauseStats& pauses) {
  // The last user: no user maps the file any more and none can join, so no
  // lock is needed. Slices keep each step short where the file holds much.
  in_growing_slices(kKernMappedSize, pauses, [&](std::uint64_t off, std::uint64_t n) {
    os::punch_hole(file_.fd(), off, n);
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
  if (owner_pid_ == getpid() && ctl_ != nullptr && file_.leave_as_last()) {
    release_all_pages(pauses);
    if (ctl_->name[0] != '\0') {
      file_.unlink_name(std::string_view(ctl_->name, strnlen(ctl_->name, kMaxNameLength)));
    }
  }
  if (ctl_ != nullptr) munmap(ctl_, control_size_);
  ctl_ = nullptr;
  file_.release();
  return pauses;
}

}  // namespace scxkit::internal
