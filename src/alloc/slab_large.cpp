// Allocations over 4096 bytes: whole pages straight from the arena, recorded
// in the page map (head entry with the page count, body entries pointing back
// at the head) so free() can tell them, their interiors and strangers apart.
#include <fmt/format.h>

#include "alloc/slab_heap.hpp"

namespace scxkit::internal {

Result<void*> SlabHeapImpl::alloc_large(std::size_t size) {
  const std::uint64_t pages = (std::uint64_t{size} + kPageSize - 1) / kPageSize;
  if (size > user_size_ || pages >= (1u << 20)) {
    return make_error(Errc::too_big,
                      fmt::format("{} bytes is more than the arena's {} bytes", size, user_size_));
  }
  const auto count = static_cast<std::uint32_t>(pages);
  for (;;) {
    auto p = arena_->alloc_pages(nullptr, count);
    if (!p) {
      return make_error(p.error().code, fmt::format("no room for {} pages for a {}-byte "
                                                    "allocation: {}",
                                                    count, size, p.error().message));
    }
    const std::uint32_t off = Arena::offset_of_user(*p);
    if (off == 0) {
      // Offset 0 is null to every arena user: keep page 0 out of circulation.
      map_at(0).store(kMapHeld, std::memory_order_relaxed);
      if (count > 1) (void)arena_->free_pages(arena_->user_addr(kPageSize), count - 1);
      continue;
    }
    for (std::uint32_t i = 1; i < count; ++i) {
      map_at(off + i * kPageSize).store(off | kMapLargeBody, std::memory_order_relaxed);
    }
    map_at(off).store((count << 12) | kMapLargeHead, std::memory_order_release);
    return *p;
  }
}

Result<void> SlabHeapImpl::free_large(const void* p, std::uint32_t off, std::uint32_t entry) {
  switch (entry & kMapTagBits) {
    case kMapLargeHead: {
      if (off % kPageSize != 0) return bad_free(p, "it points inside a large allocation");
      // The CAS lets exactly one of two racing frees through.
      if (!map_at(off).compare_exchange_strong(entry, 0, std::memory_order_acq_rel)) {
        return bad_free(p, "it is not allocated (a double free)");
      }
      const std::uint32_t count = entry >> 12;
      for (std::uint32_t i = 1; i < count; ++i) {
        map_at(off + i * kPageSize).store(0, std::memory_order_relaxed);
      }
      (void)arena_->free_pages(p, count);  // only fails for an arena torn down under us
      return {};
    }
    case kMapLargeBody:
      return bad_free(p, "it points inside a large allocation");
    default:
      return bad_free(p, "this heap did not allocate it, or it was freed already");
  }
}

}  // namespace scxkit::internal
