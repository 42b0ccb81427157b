// Slab life cycle. A slab is in one of four states (SlabHeader::remote):
//   attached   owned by one thread, which allocates and frees in it freely;
//              other threads' frees queue on its remote list
//   full       its owner ran out of objects and let it go; on no list
//   listed     ownerless with free objects, on its class's partial list
//   releasing  empty; its pages are going back to the arena
// attached -> full: the owner, by CAS from "attached, no remote frees"
// full -> listed:   the first free, in the same CAS that pushes the object
// listed -> attached: a thread adopting it, under the class lock
// listed -> releasing: whoever sees the last object freed, under the class lock
#include <fmt/format.h>

#include "alloc/shared_lock.hpp"
#include "alloc/slab_heap.hpp"

namespace scxkit::internal {

std::uint32_t SlabHeapImpl::take_object(ThreadCache& tc, std::uint32_t cls, bool& from_free_list) {
  SlabHeader* h = tc.current[cls];
  std::uint32_t off = h->free_head;
  if (off == 0) {
    // Frees from other threads, all at once.
    if (remote_head(h->remote.load(std::memory_order_relaxed)) != 0) {
      off = remote_head(
          h->remote.exchange(remote_word(0, 0, kSlabAttached), std::memory_order_acquire));
    }
  }
  if (off != 0) {
    from_free_list = true;
    h->free_head = words(off)[0];
    return off;
  }
  const std::uint32_t b = h->bump.load(std::memory_order_relaxed);
  if (b < h->capacity) {
    h->bump.store(b + 1, std::memory_order_release);
    from_free_list = false;
    return offset_of(h) + kSlabHeaderBytes + b * h->object_size;
  }
  // Every object is out: let the slab go, unless a remote free slipped in.
  h->detached_used.store(h->capacity, std::memory_order_relaxed);
  h->owner.store(0, std::memory_order_relaxed);
  std::uint64_t expected = remote_word(0, 0, kSlabAttached);
  if (h->remote.compare_exchange_strong(expected, remote_word(0, 0, kSlabFull),
                                        std::memory_order_release, std::memory_order_relaxed)) {
    tc.current[cls] = nullptr;
    return 0;
  }
  h->owner.store(tc.owner, std::memory_order_relaxed);
  return take_object(tc, cls, from_free_list);
}

Result<SlabHeader*> SlabHeapImpl::acquire_slab(ThreadCache& tc, std::uint32_t cls) {
  if (classes_[cls].list_head.load(std::memory_order_relaxed) != 0) {
    auto h = adopt_listed(tc, cls);
    if (!h || *h != nullptr) return h;
  }
  return new_slab(tc, cls);
}

Result<SlabHeader*> SlabHeapImpl::adopt_listed(ThreadCache& tc, std::uint32_t cls) {
  if (auto r = lock_class(cls); !r) return tl::unexpected(std::move(r.error()));
  ClassInfo& ci = classes_[cls];
  const std::uint32_t head = ci.list_head.load(std::memory_order_relaxed);
  SlabHeader* h = head != 0 ? header(head) : nullptr;
  std::uint32_t pending = 0;
  if (h != nullptr) {
    list_unlink(ci, h);
    h->owner.store(tc.owner, std::memory_order_relaxed);
    pending = remote_head(
        h->remote.exchange(remote_word(0, 0, kSlabAttached), std::memory_order_acq_rel));
  }
  unlock_class(cls);
  if (h == nullptr) return h;
  // Fold the queued remote frees into the free list it was let go with.
  while (pending != 0) {
    std::uint32_t* w = words(pending);
    const std::uint32_t next = w[0];
    w[0] = h->free_head;
    h->free_head = pending;
    pending = next;
  }
  return h;
}

Result<SlabHeader*> SlabHeapImpl::new_slab(ThreadCache& tc, std::uint32_t cls) {
  auto pages = arena_->alloc_pages(nullptr, kSlabPages);
  if (!pages) {
    return make_error(pages.error().code, fmt::format("no room for a new {}-byte slab: {}",
                                                      kSlabBytes, pages.error().message));
  }
  auto* h = static_cast<SlabHeader*>(*pages);
  const std::uint32_t off = offset_of(h);
  const std::uint32_t size = kClassSizes[cls];
  h->magic = kSlabMagic;
  h->size_class = static_cast<std::uint16_t>(cls);
  h->pages = kSlabPages;
  h->object_size = size;
  h->capacity = (kSlabBytes - kSlabHeaderBytes) / size;
  h->inverse = kClassInverse[cls];
  h->free_head = 0;
  h->detached_used.store(0, std::memory_order_relaxed);
  h->remote.store(remote_word(0, 0, kSlabAttached), std::memory_order_relaxed);
  h->owner.store(tc.owner, std::memory_order_relaxed);
  h->bump.store(0, std::memory_order_relaxed);
  h->list_next = h->list_prev = h->on_list = 0;
  const std::uint32_t entry = off | (cls << kMapClassShift) | kMapSlab;
  for (std::uint32_t i = 0; i < kSlabPages; ++i) {
    map_at(off + i * kPageSize).store(entry, std::memory_order_release);
  }
  root_->slabs_created.fetch_add(1, std::memory_order_relaxed);
  return h;
}

void SlabHeapImpl::settle(SlabHeader* h) {
  const std::uint32_t cls = h->size_class;
  // Without the lock the slab stays where it is: still correct, only not
  // reused or released until recover() or the next lock holder repairs it.
  if (!lock_class(cls)) return;
  const bool release = settle_locked(h, true);
  unlock_class(cls);
  if (release) finish_release(h);
}

bool SlabHeapImpl::settle_locked(SlabHeader* h, bool may_keep) {
  ClassInfo& ci = classes_[h->size_class];
  const std::uint64_t w = h->remote.load(std::memory_order_acquire);
  if (remote_state(w) != kSlabListed) return false;  // adopted or released meanwhile
  const bool empty = remote_count(w) == h->detached_used.load(std::memory_order_relaxed);
  if (!empty || h->on_list == 2) {
    if (h->on_list == 0) list_push(ci, h, false);
    return false;
  }
  if (h->on_list != 0) list_unlink(ci, h);
  if (may_keep && ci.empty_listed.load(std::memory_order_relaxed) < root_->empty_keep) {
    // A few empty slabs per class stay listed, so that a producer/consumer
    // pair does not give slabs back and take new ones every cycle.
    list_push(ci, h, true);
    return false;
  }
  // Nothing is in use, so no legitimate free can race this store. The pages
  // go back after the lock is dropped (in a shared arena a page free waits
  // for the other processes); `releasing` tells a list rebuild to wait.
  h->remote.store(remote_word(0, 0, kSlabReleasing), std::memory_order_relaxed);
  ci.releasing.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void SlabHeapImpl::finish_release(SlabHeader* h) {
  std::atomic<std::uint32_t>& releasing = classes_[h->size_class].releasing;
  release_slab(h);
  releasing.fetch_sub(1, std::memory_order_acq_rel);
}

SlabHeapImpl::Abandoned SlabHeapImpl::abandon(SlabHeader* h, bool verify_links, bool locked) {
  // Count the free list. A dead owner may have left it half-updated, so
  // links are checked (duplicates too, when asked) and the list is cut at
  // the first bad one; what lay beyond stays counted as in use.
  const std::uint32_t first = offset_of(h) + kSlabHeaderBytes;
  const std::uint32_t bump = std::min(h->bump.load(std::memory_order_relaxed), h->capacity);
  std::vector<bool> seen(verify_links ? bump : 0);
  std::uint32_t length = 0;
  bool cut = false;
  std::uint32_t* link = &h->free_head;
  while (*link != 0) {
    const std::uint32_t delta = *link - first;
    const std::uint32_t idx = delta / h->object_size;
    if (delta % h->object_size != 0 || idx >= bump || length >= bump ||
        (verify_links && seen[idx])) {
      *link = 0;
      cut = true;
      break;
    }
    if (verify_links) seen[idx] = true;
    ++length;
    link = words(*link);
  }
  const std::uint32_t used = bump - length;
  h->detached_used.store(used, std::memory_order_relaxed);
  h->owner.store(0, std::memory_order_relaxed);
  std::uint64_t old = h->remote.load(std::memory_order_relaxed);
  while (!h->remote.compare_exchange_weak(
      old, remote_word(remote_head(old), remote_count(old), kSlabListed), std::memory_order_acq_rel,
      std::memory_order_relaxed)) {
  }
  const std::uint32_t in_use = used - std::min(used, remote_count(old));
  // An abandoned slab that is empty goes straight back: its thread is gone.
  if (!locked && !lock_class(h->size_class)) return {in_use, cut, false};
  const bool release = settle_locked(h, false);
  if (locked) return {in_use, cut, release};
  unlock_class(h->size_class);
  if (release) finish_release(h);
  return {in_use, cut, false};
}

void SlabHeapImpl::release_slab(SlabHeader* h) {
  const std::uint32_t off = offset_of(h);
  const std::uint32_t pages = h->pages;
  for (std::uint32_t i = 0; i < pages; ++i) {
    map_at(off + i * kPageSize).store(0, std::memory_order_release);
  }
  root_->slabs_released.fetch_add(1, std::memory_order_relaxed);
  // Fails only for an arena torn down under us, or when its lock stayed held
  // past the arena's deadline by a stuck process: the pages then stay
  // allocated (a leak; the heap no longer refers to them).
  (void)arena_->free_pages(h, pages);
}

void SlabHeapImpl::release_thread(ThreadCache* cache) {
  for (SlabHeader*& h : cache->current) {
    if (h != nullptr) abandon(h, false, false);
    h = nullptr;
  }
  threads_[cache->owner - 1].process.store(0, std::memory_order_release);
  std::lock_guard lock(caches_mu_);
  std::erase_if(caches_, [cache](const auto& c) { return c.get() == cache; });
}

Result<void> SlabHeapImpl::lock_class(std::uint32_t cls) {
  auto taken = shared_lock(classes_[cls].lock, self_);
  if (!taken) return tl::unexpected(std::move(taken.error()));
  if (*taken == LockTaken::from_dead_holder) rebuild_class_list(cls);
  return {};
}

void SlabHeapImpl::unlock_class(std::uint32_t cls) {
  shared_unlock(classes_[cls].lock);
}

void SlabHeapImpl::list_push(ClassInfo& ci, SlabHeader* h, bool empty) {
  const std::uint32_t off = offset_of(h);
  const std::uint32_t head = ci.list_head.load(std::memory_order_relaxed);
  h->list_prev = 0;
  h->list_next = head;
  if (head != 0) header(head)->list_prev = off;
  ci.list_head.store(off, std::memory_order_relaxed);
  h->on_list = empty ? 2 : 1;
  ci.list_length.fetch_add(1, std::memory_order_relaxed);
  if (empty) ci.empty_listed.fetch_add(1, std::memory_order_relaxed);
}

void SlabHeapImpl::list_unlink(ClassInfo& ci, SlabHeader* h) {
  if (h->list_prev != 0) {
    header(h->list_prev)->list_next = h->list_next;
  } else {
    ci.list_head.store(h->list_next, std::memory_order_relaxed);
  }
  if (h->list_next != 0) header(h->list_next)->list_prev = h->list_prev;
  if (h->on_list == 2) ci.empty_listed.fetch_sub(1, std::memory_order_relaxed);
  h->list_next = h->list_prev = h->on_list = 0;
  ci.list_length.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace scxkit::internal
