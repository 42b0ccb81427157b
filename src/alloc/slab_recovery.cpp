// What the living do about the dead: threads whose process died leave slabs
// attached to them and may leave a class lock held. Slab headers are the
// truth (their state word changes only by CAS); the class lists are an index
// rebuilt from them by walking the page map.
#include <algorithm>

#include "alloc/shared_lock.hpp"
#include "alloc/slab_heap.hpp"
#include "arena/os.hpp"

namespace scxkit::internal {

template <class F>
void SlabHeapImpl::for_each_slab(std::uint32_t cls, F&& f) const {
  const auto start = static_cast<std::uint32_t>(user_start_);
  const std::uint32_t want = (cls << kMapClassShift) | kMapSlab;
  for (std::uint32_t i = 0; i < map_entries_; ++i) {
    const std::uint32_t e = map_[i].load(std::memory_order_acquire);
    const std::uint32_t off = start + i * kPageSize;
    if ((e & kMapLowMask) == want && (e & ~kMapLowMask) == off) f(header(off));
  }
}

void SlabHeapImpl::rebuild_class_list(std::uint32_t cls) {
  ClassInfo& ci = classes_[cls];
  // Headers of slabs being released may vanish under the scan: let those
  // releases finish (bounded: a releaser that died never will).
  const std::uint64_t deadline = os::monotonic_ns() + 1'000'000'000;
  while (ci.releasing.load(std::memory_order_acquire) != 0 && os::monotonic_ns() < deadline) {
    os::sleep_ns(1'000'000);
  }
  ci.releasing.store(0, std::memory_order_relaxed);
  ci.list_head.store(0, std::memory_order_relaxed);
  ci.list_length.store(0, std::memory_order_relaxed);
  ci.empty_listed.store(0, std::memory_order_relaxed);
  std::vector<SlabHeader*> listed;
  for_each_slab(cls, [&](SlabHeader* h) {
    h->on_list = 0;
    if (remote_state(h->remote.load(std::memory_order_acquire)) == kSlabListed) {
      listed.push_back(h);
    }
  });
  // Rare (a lock holder died, or recover()): releasing under the lock is fine.
  for (SlabHeader* h : listed) {
    if (settle_locked(h, true)) finish_release(h);
  }
}

Result<SlabRecovery> SlabHeapImpl::recover() {
  SlabRecovery report;
  std::vector<std::uint32_t> dead;  // owner ids
  for (std::uint32_t i = 0; i < root_->max_threads; ++i) {
    std::uint64_t held = threads_[i].process.load(std::memory_order_acquire);
    if (held == 0 || held == self_.packed() || !process_gone(ProcessId::unpack(held))) continue;
    // Claim the record so that two recovering processes do not both act.
    if (threads_[i].process.compare_exchange_strong(held, self_.packed(),
                                                    std::memory_order_acq_rel)) {
      dead.push_back(i + 1);
    }
  }
  report.dead_threads = static_cast<std::uint32_t>(dead.size());
  for (std::uint32_t c = 0; c < kClassCount; ++c) {
    if (auto r = lock_class(c); !r) return tl::unexpected(std::move(r.error()));
    std::vector<SlabHeader*> owned;
    for_each_slab(c, [&](SlabHeader* h) {
      const std::uint32_t owner = h->owner.load(std::memory_order_acquire);
      if (std::find(dead.begin(), dead.end(), owner) != dead.end()) owned.push_back(h);
    });
    for (SlabHeader* h : owned) {
      const Abandoned a = abandon(h, true, true);
      if (a.release) finish_release(h);
      ++report.slabs_recovered;
      report.objects_in_use += a.in_use;
      report.free_lists_cut += a.list_cut ? 1 : 0;
    }
    // A process that died between making a slab listed and taking the lock
    // left it off the list: the rebuild finds it.
    rebuild_class_list(c);
    unlock_class(c);
  }
  for (std::uint32_t id : dead) threads_[id - 1].process.store(0, std::memory_order_release);
  root_->objects_of_dead_threads.fetch_add(report.objects_in_use, std::memory_order_relaxed);
  return report;
}

SlabStats SlabHeapImpl::stats() const {
  SlabStats s;
  for (std::uint32_t i = 0; i < map_entries_; ++i) {
    const std::uint32_t e = map_[i].load(std::memory_order_relaxed);
    switch (e & kMapTagBits) {
      case kMapSlab:
        ++s.slab_pages;
        break;
      case kMapLargeHead:
        ++s.large_allocations;
        s.large_pages += e >> 12;
        break;
      default:
        break;
    }
  }
  s.slabs = s.slab_pages / kSlabPages;
  for (std::uint32_t c = 0; c < kClassCount; ++c) {
    s.empty_slabs_kept += classes_[c].empty_listed.load(std::memory_order_relaxed);
  }
  s.root_pages = root_->root_pages;
  s.slabs_created = root_->slabs_created.load(std::memory_order_relaxed);
  s.slabs_released = root_->slabs_released.load(std::memory_order_relaxed);
  s.bad_frees = root_->bad_frees.load(std::memory_order_relaxed);
  s.pattern_violations = root_->pattern_violations.load(std::memory_order_relaxed);
  s.objects_of_dead_threads = root_->objects_of_dead_threads.load(std::memory_order_relaxed);
  return s;
}

}  // namespace scxkit::internal
