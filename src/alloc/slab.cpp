// SlabHeap's public face and its fast paths: a same-thread alloc or free is a
// few loads and stores on the thread's own slab header, with no atomic
// read-modify-write; a free into another thread's slab is one exchange (the
// double-free tag) and one compare-and-swap (the slab's remote list).
#include <cstring>

#include <fmt/format.h>

#include "alloc/slab_heap.hpp"
#include "arena/os.hpp"

namespace scxkit {

namespace {
using internal::SlabHeapImpl;

template <class T>
std::atomic_ref<T> aref(T& v) {
  return std::atomic_ref<T>(v);
}
}  // namespace

namespace internal {

Result<void*> SlabHeapImpl::alloc(std::size_t size) {
  if (size - 1 < kMaxSmallSize) {
    const std::uint32_t cls = size_class_of(size);
    TlsSlot& s = tls_slots[slot_.index];
    if (s.uid == fast_uid_) [[likely]] {
      SlabHeader* h = s.cache->current[cls];
      if (h != nullptr) [[likely]] {
        const std::uint32_t off = h->free_head;
        if (off != 0) [[likely]] {
          std::uint32_t* w = words(off);
          h->free_head = w[0];
          aref(w[1]).store(0, std::memory_order_relaxed);  // no longer tagged free
          return static_cast<void*>(w);
        }
      }
    }
    return alloc_small_slow(cls);
  }
  if (size == 0) return make_error(Errc::invalid_argument, "cannot allocate 0 bytes");
  return alloc_large(size);
}

Result<void> SlabHeapImpl::free(const void* p) {
  const auto rel = reinterpret_cast<std::uintptr_t>(p) - user_start_;
  if (rel >= user_size_) return bad_free(p, "it is not in the arena's user view");
  const auto off = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p));
  const std::uint32_t e = map_[rel / kPageSize].load(std::memory_order_relaxed);
  if ((e & kMapTagBits) != kMapSlab) return free_large(p, off, e);
  const std::uint32_t slab = e & ~kMapLowMask;
  const std::uint32_t cls = (e >> kMapClassShift) & 31;
  const std::uint32_t delta = off - slab - kSlabHeaderBytes;
  const std::uint32_t size = kClassSizes[cls];
  const auto idx = static_cast<std::uint32_t>((std::uint64_t{delta} * kClassInverse[cls]) >> 32);
  if (std::uint64_t{idx} * size != delta) {
    return bad_free(p, "it points inside an object or into a slab header, not at an object");
  }
  SlabHeader* h = header(slab);
  TlsSlot& s = tls_slots[slot_.index];
  if (s.uid == fast_uid_ && h->owner.load(std::memory_order_relaxed) == s.cache->owner) {
    std::uint32_t* w = words(off);
    const std::uint32_t tag = free_tag(secret_, off);
    if (idx >= h->bump.load(std::memory_order_relaxed) ||
        aref(w[1]).load(std::memory_order_relaxed) == tag) [[unlikely]] {
      return bad_free(p, "it is not allocated (a double free, or never handed out)");
    }
    aref(w[1]).store(tag, std::memory_order_relaxed);
    w[0] = h->free_head;
    h->free_head = off;
    return {};
  }
  return free_remote(h, off, idx);
}

Result<void> SlabHeapImpl::free_remote(SlabHeader* h, std::uint32_t off, std::uint32_t idx) {
  std::uint32_t* w = words(off);
  if (idx >= h->bump.load(std::memory_order_acquire)) {
    return bad_free(w, "it is not allocated (never handed out)");
  }
  // The exchange makes a racing second free of the same object see the tag.
  const std::uint32_t tag = free_tag(secret_, off);
  if (aref(w[1]).exchange(tag, std::memory_order_acq_rel) == tag) {
    return bad_free(w, "it is not allocated (a double free)");
  }
  if (debug_) debug_fill(off, kClassSizes[h->size_class]);
  std::uint64_t old = h->remote.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    w[0] = remote_head(old);
    const std::uint64_t state = remote_state(old) == kSlabFull ? kSlabListed : remote_state(old);
    next = remote_word(off, remote_count(old) + 1, state);
  } while (!h->remote.compare_exchange_weak(old, next, std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  // Ownerless slab: its first free puts it on the class list; its last free
  // gives it back to the arena.
  if (remote_state(old) == kSlabFull ||
      (remote_state(old) == kSlabListed &&
       remote_count(next) == h->detached_used.load(std::memory_order_relaxed))) {
    settle(h);
  }
  return {};
}

Result<void> SlabHeapImpl::bad_free(const void* p, const char* why) {
  root_->bad_frees.fetch_add(1, std::memory_order_relaxed);
  return make_error(Errc::invalid_argument,
                    fmt::format("free({}) refused: {}; the heap is unchanged", p, why));
}

Result<ThreadCache*> SlabHeapImpl::thread_cache() {
  TlsSlot& s = tls_slots[slot_.index];
  if (s.uid == slot_.uid) return s.cache;
  // First use by this thread: claim a thread record in the arena.
  const std::uint32_t tid = static_cast<std::uint32_t>(os::current_tid());
  for (std::uint32_t i = 0; i < root_->max_threads; ++i) {
    std::uint64_t expected = 0;
    if (threads_[i].process.load(std::memory_order_relaxed) == 0 &&
        threads_[i].process.compare_exchange_strong(expected, self_.packed(),
                                                    std::memory_order_acq_rel)) {
      threads_[i].tid = tid;
      auto cache = std::make_unique<ThreadCache>();
      cache->owner = i + 1;
      {
        std::lock_guard lock(caches_mu_);
        caches_.push_back(std::move(cache));
        s = TlsSlot{slot_.uid, caches_.back().get()};
      }
      arm_thread_exit();
      return s.cache;
    }
  }
  return make_error(Errc::no_space, fmt::format("the heap's {} thread records are all taken; "
                                                "create it with a larger max_threads",
                                                root_->max_threads));
}

Result<void*> SlabHeapImpl::alloc_small_slow(std::uint32_t cls) {
  auto tc = thread_cache();
  if (!tc) return tl::unexpected(std::move(tc.error()));
  ThreadCache& c = **tc;
  bool from_list = false;
  std::uint32_t off = c.current[cls] != nullptr ? take_object(c, cls, from_list) : 0;
  while (off == 0) {
    auto h = acquire_slab(c, cls);
    if (!h) return tl::unexpected(std::move(h.error()));
    c.current[cls] = *h;
    off = take_object(c, cls, from_list);
  }
  std::uint32_t* w = words(off);
  aref(w[1]).store(0, std::memory_order_relaxed);
  if (debug_ && from_list) debug_check(off, kClassSizes[cls]);
  return static_cast<void*>(w);
}

constexpr std::uint8_t kFreedPattern = 0xdf;

void SlabHeapImpl::debug_fill(std::uint32_t off, std::uint32_t size) {
  if (size > 8) std::memset(words(off) + 2, kFreedPattern, size - 8);
}

void SlabHeapImpl::debug_check(std::uint32_t off, std::uint32_t size) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(words(off));
  for (std::uint32_t i = 8; i < size; ++i) {
    if (b[i] != kFreedPattern) {
      root_->pattern_violations.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

Result<std::size_t> SlabHeapImpl::usable_size(const void* p) const {
  const auto rel = reinterpret_cast<std::uintptr_t>(p) - user_start_;
  if (rel >= user_size_) {
    return make_error(Errc::invalid_argument, "the pointer is not in the arena's user view");
  }
  const std::uint32_t e = map_[rel / kPageSize].load();
  if ((e & kMapTagBits) == kMapSlab) return kClassSizes[(e >> kMapClassShift) & 31];
  if ((e & kMapTagBits) == kMapLargeHead) return std::size_t{e >> 12} * kPageSize;
  return make_error(Errc::invalid_argument, "the pointer is not an allocation of this heap");
}

}  // namespace internal

SlabHeap::SlabHeap(std::unique_ptr<SlabHeapImpl> impl) : impl_(std::move(impl)) {}
SlabHeap::SlabHeap(SlabHeap&&) noexcept = default;
SlabHeap& SlabHeap::operator=(SlabHeap&&) noexcept = default;
SlabHeap::~SlabHeap() = default;

Result<SlabHeap> SlabHeap::create(Arena& arena, const SlabOptions& options) {
  auto impl = SlabHeapImpl::create(arena, options);
  if (!impl) return tl::unexpected(std::move(impl.error()));
  return SlabHeap(std::move(*impl));
}

Result<SlabHeap> SlabHeap::attach(Arena& arena, std::uint32_t root_offset) {
  auto impl = SlabHeapImpl::attach(arena, root_offset);
  if (!impl) return tl::unexpected(std::move(impl.error()));
  return SlabHeap(std::move(*impl));
}

Result<void*> SlabHeap::alloc(std::size_t size) {
  return impl_->alloc(size);
}

Result<void*> SlabHeap::alloc_aligned(std::size_t size, std::size_t align) {
  if (align == 0 || (align & (align - 1)) != 0 || align > kPageSize) {
    return make_error(Errc::invalid_argument,
                      fmt::format("alignment {} is not a power of two up to 4096", align));
  }
  if (align <= 8) return impl_->alloc(size);
  // Classes that are multiples of the alignment are aligned to it up to 64;
  // beyond that only whole pages are.
  if (align > kMaxAlign) return impl_->alloc(std::max<std::size_t>(size, kMaxSmallSize + 1));
  return impl_->alloc((size + align - 1) & ~(align - 1));
}

Result<void> SlabHeap::free(const void* user_ptr) {
  return impl_->free(user_ptr);
}
Result<std::size_t> SlabHeap::usable_size(const void* p) const {
  return impl_->usable_size(p);
}
Result<SlabRecovery> SlabHeap::recover() {
  return impl_->recover();
}
SlabStats SlabHeap::stats() const {
  return impl_->stats();
}
std::uint32_t SlabHeap::root_offset() const {
  return impl_->root_offset();
}
Arena& SlabHeap::arena() const {
  return impl_->arena();
}

}  // namespace scxkit
