// scxkit::Pool — a sub-allocator over arena pages in the shape of the
// kernel's gen_pool: for rare, init-time allocations of any size.
//
// The pool holds chunks of arena pages; each chunk starts with a header
// (in the arena) holding two bitmaps with one bit per 8-byte granule: which
// granules are allocated, and which start an allocation. An allocation is the
// first run of free granules that fits (first fit, chunk by chunk); when none
// fits the pool grows by a chunk of at least `min_grow_pages` pages, or what
// the request needs. Because the start of every allocation is recorded,
// free() needs no size and refuses what it never handed out: a double free, a
// pointer inside an allocation, a misaligned or foreign address — and the
// pool stays as it was.
//
// Allocations are 8-byte aligned and never at offset 0 (a chunk's header sits
// at its start). One process uses a pool; the calls are thread-safe (one
// mutex: the pool is not the fast path — SlabHeap is). destroy() (or the
// destructor) gives every chunk back to the arena, outstanding allocations
// included. The arena must outlive the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "scxkit/arena.hpp"
#include "scxkit/arena_ptr.hpp"
#include "scxkit/error.hpp"

namespace scxkit {

struct PoolOptions {
  std::uint32_t min_grow_pages = 4;  // smallest chunk the pool adds
};

struct PoolStats {
  std::uint32_t chunks = 0;
  std::uint64_t pages = 0;         // arena pages the pool holds
  std::uint64_t allocations = 0;   // live
  std::uint64_t bytes_in_use = 0;  // granules allocated to callers, in bytes
};

namespace internal {
class PoolImpl;
}

class Pool {
 public:
  static constexpr std::size_t kGranule = 8;

  // Errors: invalid_argument (min_grow_pages 0 or beyond the arena).
  static Result<Pool> create(Arena& arena, const PoolOptions& options = {});
  Pool(Pool&&) noexcept;
  Pool& operator=(Pool&&) noexcept;
  ~Pool();

  // `size` bytes, rounded up to 8. Errors: invalid_argument (0 bytes),
  // too_big (more than the arena holds), no_space (the arena is full).
  Result<std::uint32_t> alloc(std::size_t size);  // the arena offset
  Result<void*> alloc_user(std::size_t size);     // address in the user view
  // Address in the kernel view. Errc::unsupported (nothing allocated) on a
  // kernel arena, whose kernel view only the kernel maps: use alloc() or
  // alloc_user().
  Result<void*> alloc_kern(std::size_t size);
  // n zero-filled Ts (T trivially copyable: the pool constructs nothing).
  template <class T>
  Result<ArenaPtr<T>> alloc_typed(std::size_t n = 1);

  // Frees what alloc*() returned. Errors (invalid_argument) name what was wrong.
  Result<void> free(std::uint32_t offset);
  Result<void> free_user(const void* user_addr);
  Result<void> free_kern(const void* kern_addr);  // Errc::unsupported on a kernel arena

  // Checks every chunk's bitmaps for consistency: headers allocated, every
  // start bit on an allocated granule, counts matching. For tests and audits.
  Result<void> check() const;
  PoolStats stats() const;
  // Gives every chunk back to the arena; later calls fail cleanly.
  void destroy();

 private:
  explicit Pool(std::unique_ptr<internal::PoolImpl> impl);
  std::unique_ptr<internal::PoolImpl> impl_;
};

template <class T>
Result<ArenaPtr<T>> Pool::alloc_typed(std::size_t n) {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= kGranule,
                "the pool hands out 8-byte aligned raw memory");
  if (n == 0 || n > SIZE_MAX / sizeof(T)) {
    return make_error(Errc::invalid_argument, "alloc_typed needs 1 or more elements that fit");
  }
  auto off = alloc(n * sizeof(T));
  if (!off) return tl::unexpected(std::move(off.error()));
  return ArenaPtr<T>(*off);
}

}  // namespace scxkit
