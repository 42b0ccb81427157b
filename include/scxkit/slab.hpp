// scxkit::SlabHeap — a fast general-purpose allocator over arena memory.
//
// Objects of 1..4096 bytes come from 32 size classes carved out of 64 KiB
// slabs; larger requests take whole pages. Everything the allocator knows
// lives in the arena (docs/ALLOCATORS.md has the versioned layout): a root
// with the size-class table and a page map, and a header at the start of every
// slab. Free lists are linked through the free objects with 32-bit arena
// offsets, so they are valid in every view and in every process.
//
// Speed: each thread owns one slab per size class and allocates and frees in
// it without any atomic operation. A free from another thread (or process)
// pushes onto that slab's own lock-free list of 32-bit offsets; a slab that
// runs full is let go and comes back to a thread through its class's partial
// list when a free makes room. A slab whose last object is freed goes back to
// the arena (Arena::free_pages), so memory really returns — except a few
// empty slabs per size class (1 in arenas under 64 MiB, up to 8 from 512 MiB),
// kept so that a producer/consumer pair does not give slabs back and take new
// ones every cycle.
//
// Sharing: several processes that map one arena attach to the same heap
// (create() in one, attach(root_offset()) in the others) and may free each
// other's objects. A process killed inside the allocator never corrupts the
// heap for the others: slab states change by compare-and-swap, class lists are
// guarded by locks that a waiter takes over (and repairs) when their holder
// died, and recover() hands the slabs of dead threads to the living, counting
// the objects that cannot be accounted for.
//
// Bad frees — a pointer the heap never handed out, one inside an object, one
// freed twice — are detected and returned as errors; the heap is not changed.
// Double frees are recognised by a tag that free writes into word 1 of the
// object; odds are 2^-32 that live data looks the same, in which case that
// one free is refused (the object leaks; nothing is corrupted). Debug mode
// also fills freed memory with 0xdf and checks it when the object is handed
// out again, counting writes to freed memory.
//
// An object is aligned to the largest power of two dividing its size class
// (at least 8; alloc_aligned() for more); offset 0 is never returned.
// Thread-safe.
// A process may attach to at most 64 heaps at once. Destroying a SlabHeap
// object detaches this process (its threads' slabs go to the partial lists);
// the heap itself stays in the arena for the other processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "scxkit/arena.hpp"
#include "scxkit/arena_ptr.hpp"
#include "scxkit/error.hpp"

namespace scxkit {

struct SlabOptions {
  bool debug = false;                // check every free, pattern-fill freed memory
  std::uint32_t max_threads = 1024;  // threads, over all processes, using the heap at once
};

struct SlabStats {
  std::uint64_t slabs = 0;  // slabs the heap holds now
  std::uint64_t slab_pages = 0;
  std::uint64_t empty_slabs_kept = 0;   // at most one per size class, kept for reuse
  std::uint64_t large_allocations = 0;  // live allocations over 4096 bytes
  std::uint64_t large_pages = 0;
  std::uint64_t root_pages = 0;  // the root: class table, thread records, page map
  std::uint64_t slabs_created = 0;
  std::uint64_t slabs_released = 0;           // given back to the arena
  std::uint64_t bad_frees = 0;                // refused frees, from every process
  std::uint64_t pattern_violations = 0;       // debug mode: freed memory found written
  std::uint64_t objects_of_dead_threads = 0;  // sum of SlabRecovery::objects_in_use
};

// What recover() did about threads whose process died.
struct SlabRecovery {
  std::uint32_t dead_threads = 0;
  std::uint32_t slabs_recovered = 0;  // handed to the partial lists or released
  // Objects of those slabs in use at recovery: ones other processes still
  // hold (their frees work as usual), plus the ones the dead process held or
  // was allocating or freeing when it died — those are lost, and keep their
  // slab from going back to the arena.
  std::uint64_t objects_in_use = 0;
  std::uint32_t free_lists_cut = 0;  // free lists left half-updated, cut at the bad link
};

namespace internal {
class SlabHeapImpl;
}

class SlabHeap {
 public:
  static constexpr std::size_t kMaxSmallSize = 4096;
  static constexpr std::size_t kMaxAlign = 64;

  // Builds a new heap in `arena`: the root takes a few pages (the page map
  // needs 4 bytes per arena page). The arena must outlive the heap object.
  static Result<SlabHeap> create(Arena& arena, const SlabOptions& options = {});
  // Attaches to a heap another process (or this one) created in the same arena.
  static Result<SlabHeap> attach(Arena& arena, std::uint32_t root_offset);

  SlabHeap(SlabHeap&&) noexcept;
  SlabHeap& operator=(SlabHeap&&) noexcept;
  ~SlabHeap();

  // `size` bytes (1 .. the arena's size) in the user view. Errors:
  // invalid_argument (0 bytes, alignment not a power of two or over 4096),
  // too_big, no_space (the arena is full).
  Result<void*> alloc(std::size_t size);
  Result<void*> alloc_aligned(std::size_t size, std::size_t align);
  // Frees an object of this heap, allocated by any thread of any process.
  // Errors (invalid_argument) say what was wrong; nothing is changed then.
  Result<void> free(const void* user_ptr);

  // Usable size of an allocated object (its size class, or whole pages).
  Result<std::size_t> usable_size(const void* user_ptr) const;

  // Typed allocation: constructs a T (or n value-initialised Ts) and returns
  // the arena pointer, valid in every view and process.
  template <class T, class... Args>
  Result<ArenaPtr<T>> make(Args&&... args);
  template <class T>
  Result<ArenaPtr<T>> make_array(std::size_t n);
  // Destroys and frees what make()/make_array() returned.
  template <class T>
  Result<void> destroy(ArenaPtr<T> p, std::size_t n = 1);

  // Hands the slabs of threads whose process died to the living.
  Result<SlabRecovery> recover();
  SlabStats stats() const;

  std::uint32_t root_offset() const;
  Arena& arena() const;

 private:
  explicit SlabHeap(std::unique_ptr<internal::SlabHeapImpl> impl);
  std::unique_ptr<internal::SlabHeapImpl> impl_;
};

// A std allocator over a SlabHeap, for containers whose elements live in the
// arena (their bookkeeping objects too, when the container itself is
// allocated there). Throws std::bad_alloc when the heap cannot allocate.
template <class T>
class ArenaAllocator {
 public:
  using value_type = T;

  explicit ArenaAllocator(SlabHeap& heap) noexcept : heap_(&heap) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : heap_(other.heap()) {}

  T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    auto p = alignof(T) > alignof(std::uint64_t) ? heap_->alloc_aligned(n * sizeof(T), alignof(T))
                                                 : heap_->alloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(*p);
  }
  void deallocate(T* p, std::size_t) noexcept { (void)heap_->free(p); }

  SlabHeap* heap() const noexcept { return heap_; }
  template <class U>
  bool operator==(const ArenaAllocator<U>& o) const noexcept {
    return heap_ == o.heap();
  }

 private:
  SlabHeap* heap_;
};

template <class T, class... Args>
Result<ArenaPtr<T>> SlabHeap::make(Args&&... args) {
  static_assert(alignof(T) <= kMaxAlign, "arena objects are at most 64-byte aligned");
  auto p = alloc_aligned(sizeof(T), alignof(T));
  if (!p) return tl::unexpected(std::move(p.error()));
  T* obj = ::new (*p) T(std::forward<Args>(args)...);
  return ArenaPtr<T>::from(arena().user_view(), obj);
}

template <class T>
Result<ArenaPtr<T>> SlabHeap::make_array(std::size_t n) {
  static_assert(alignof(T) <= kMaxAlign, "arena objects are at most 64-byte aligned");
  if (n == 0 || n > SIZE_MAX / sizeof(T)) {
    return make_error(Errc::invalid_argument, "make_array needs 1 or more elements that fit");
  }
  auto p = alloc_aligned(n * sizeof(T), alignof(T));
  if (!p) return tl::unexpected(std::move(p.error()));
  T* first = static_cast<T*>(*p);
  for (std::size_t i = 0; i < n; ++i) ::new (first + i) T();
  return ArenaPtr<T>::from(arena().user_view(), first);
}

template <class T>
Result<void> SlabHeap::destroy(ArenaPtr<T> p, std::size_t n) {
  T* first = p.in(arena().user_view());
  if (first == nullptr)
    return make_error(Errc::invalid_argument, "destroy of a null arena pointer");
  if (auto size = usable_size(first); !size || *size < n * sizeof(T)) {
    return size ? make_error(Errc::invalid_argument, "destroy of more elements than allocated")
                : tl::unexpected(std::move(size.error()));
  }
  for (std::size_t i = 0; i < n; ++i) first[i].~T();
  return free(first);
}

}  // namespace scxkit
