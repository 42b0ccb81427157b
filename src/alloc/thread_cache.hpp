// Per-thread state of the slab allocator in this process: a small table of
// thread-local slots, one per attached heap, each naming the thread's cache
// for that heap. The slot array is initial-exec TLS, so the fast path finds
// its cache with one TLS-relative load and no __tls_get_addr call.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "alloc/size_class.hpp"
#include "alloc/slab_layout.hpp"
#include "scxkit/error.hpp"

namespace scxkit::internal {

class SlabHeapImpl;

inline constexpr std::uint32_t kMaxHeapsPerProcess = 64;

// What one thread owns in one heap: its thread record and one slab per class.
struct ThreadCache {
  std::uint32_t owner = 0;  // thread record index + 1
  std::array<SlabHeader*, kClassCount> current{};
};

struct TlsSlot {
  std::uint64_t uid = 0;  // the heap's process-unique id; a stale value means "not yours"
  ThreadCache* cache = nullptr;
};

extern constinit thread_local TlsSlot tls_slots[kMaxHeapsPerProcess]
    __attribute__((tls_model("initial-exec")));

struct HeapSlot {
  std::uint32_t index;
  std::uint64_t uid;
};

// Gives a heap a slot and a fresh uid; Errc::no_space past kMaxHeapsPerProcess.
Result<HeapSlot> register_heap(SlabHeapImpl* heap);
// After this, exiting threads leave the heap alone. Call with the registry
// lock held (see registry_mutex()), after releasing this process's caches.
void unregister_heap_locked(std::uint32_t index);
// Serialises thread exits against heap detachment.
std::mutex& registry_mutex();
// Makes this thread's exit hand its caches back to their heaps.
void arm_thread_exit();

}  // namespace scxkit::internal
