#include "alloc/thread_cache.hpp"

#include <fmt/format.h>

#include "alloc/slab_heap.hpp"

namespace scxkit::internal {

constinit thread_local TlsSlot tls_slots[kMaxHeapsPerProcess]
    __attribute__((tls_model("initial-exec")));

namespace {

struct Registry {
  std::mutex mu;
  std::uint64_t next_uid = 1;
  std::array<SlabHeapImpl*, kMaxHeapsPerProcess> heaps{};
  std::array<std::uint64_t, kMaxHeapsPerProcess> uids{};
};

// Never destroyed: threads may exit after static destructors ran.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

struct ThreadExit {
  ~ThreadExit() {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    for (std::uint32_t i = 0; i < kMaxHeapsPerProcess; ++i) {
      TlsSlot& s = tls_slots[i];
      if (s.cache != nullptr && s.uid != 0 && r.uids[i] == s.uid)
        r.heaps[i]->release_thread(s.cache);
      s = TlsSlot{};
    }
  }
};

}  // namespace

Result<HeapSlot> register_heap(SlabHeapImpl* heap) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (std::uint32_t i = 0; i < kMaxHeapsPerProcess; ++i) {
    if (r.heaps[i] == nullptr) {
      r.heaps[i] = heap;
      r.uids[i] = r.next_uid++;
      return HeapSlot{i, r.uids[i]};
    }
  }
  return make_error(Errc::no_space,
                    fmt::format("this process is attached to {} slab heaps already, the most it "
                                "can be; destroy a SlabHeap first",
                                kMaxHeapsPerProcess));
}

void unregister_heap_locked(std::uint32_t index) {
  Registry& r = registry();
  r.heaps[index] = nullptr;
  r.uids[index] = 0;
}

std::mutex& registry_mutex() {
  return registry().mu;
}

void arm_thread_exit() {
  thread_local ThreadExit guard;
  (void)guard;
}

}  // namespace scxkit::internal
