// The slab allocator's process-local handle on a heap in the arena. Fast
// paths are in slab.cpp; slab life cycle and class lists in slab_slabs.cpp;
// large allocations in slab_large.cpp; the root in slab_root.cpp; dead
// owners, list repair and statistics in slab_recovery.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "alloc/size_class.hpp"
#include "alloc/slab_layout.hpp"
#include "alloc/thread_cache.hpp"
#include "common/process.hpp"
#include "scxkit/slab.hpp"

namespace scxkit::internal {

class SlabHeapImpl {
 public:
  static Result<std::unique_ptr<SlabHeapImpl>> create(Arena& arena, const SlabOptions& options);
  static Result<std::unique_ptr<SlabHeapImpl>> attach(Arena& arena, std::uint32_t root_offset);
  ~SlabHeapImpl();

  Result<void*> alloc(std::size_t size);
  Result<void> free(const void* p);
  Result<std::size_t> usable_size(const void* p) const;
  Result<SlabRecovery> recover();
  SlabStats stats() const;
  // Hands a thread's slabs back (thread exit, detach); registry lock held.
  void release_thread(ThreadCache* cache);

  Arena& arena() const { return *arena_; }
  std::uint32_t root_offset() const { return root_off_; }

 private:
  SlabHeapImpl(Arena& arena, std::uint32_t root_offset);
  Result<void> bind();  // maps the root's tables and registers with this process

  // slab.cpp
  Result<void*> alloc_small_slow(std::uint32_t cls);
  Result<void> free_remote(SlabHeader* h, std::uint32_t off, std::uint32_t idx);
  Result<void> bad_free(const void* p, const char* why);
  Result<ThreadCache*> thread_cache();
  void debug_fill(std::uint32_t off, std::uint32_t size);
  void debug_check(std::uint32_t off, std::uint32_t size);

  // slab_slabs.cpp
  // An object from the slab, or 0 when it has none left (the slab is then let go).
  std::uint32_t take_object(ThreadCache& tc, std::uint32_t cls, bool& from_free_list);
  Result<SlabHeader*> acquire_slab(ThreadCache& tc, std::uint32_t cls);
  Result<SlabHeader*> adopt_listed(ThreadCache& tc, std::uint32_t cls);
  Result<SlabHeader*> new_slab(ThreadCache& tc, std::uint32_t cls);
  // Puts an ownerless slab with free objects on its class list, or releases
  // it when nothing in it is in use.
  void settle(SlabHeader* h);
  // Class lock held; may_keep lets it stay listed as one of its class's kept
  // empty slabs. True: it is empty and unlisted; pass it to finish_release() once
  // the lock is dropped.
  bool settle_locked(SlabHeader* h, bool may_keep);
  void finish_release(SlabHeader* h);
  // Lets an owned slab go: counts what is out, lists or releases it. With
  // `locked` (class lock held) a slab to release is left to the caller.
  struct Abandoned {
    std::uint32_t in_use;
    bool list_cut;  // its free list was damaged and cut at the bad link
    bool release;   // locked only: pass it to finish_release()
  };
  Abandoned abandon(SlabHeader* h, bool verify_links, bool locked);
  void release_slab(SlabHeader* h);
  Result<void> lock_class(std::uint32_t cls);
  void unlock_class(std::uint32_t cls);
  void list_push(ClassInfo& ci, SlabHeader* h, bool empty);
  void list_unlink(ClassInfo& ci, SlabHeader* h);

  // slab_large.cpp
  Result<void*> alloc_large(std::size_t size);
  Result<void> free_large(const void* p, std::uint32_t off, std::uint32_t entry);

  // slab_recovery.cpp
  // Rebuilds a class list from the slab headers (after its lock holder died).
  void rebuild_class_list(std::uint32_t cls);
  // Calls f(header) for each slab of class `cls`, found through the page map
  // (the class lock held, so none of them is released meanwhile).
  template <class F>
  void for_each_slab(std::uint32_t cls, F&& f) const;

  SlabHeader* header(std::uint32_t off) const {
    return reinterpret_cast<SlabHeader*>(ubase_ + off);
  }
  std::uint32_t* words(std::uint32_t off) const {
    return reinterpret_cast<std::uint32_t*>(ubase_ + off);
  }
  // The page map is indexed by page of the user view.
  std::atomic<std::uint32_t>& map_at(std::uint32_t off) const {
    return map_[(off - static_cast<std::uint32_t>(user_start_)) / kPageSize];
  }
  std::uint32_t offset_of(const SlabHeader* h) const {
    return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(h) - ubase_);
  }

  Arena* arena_;
  std::uintptr_t ubase_;       // clear_low32(user_vm_start): user address of offset 0
  std::uintptr_t user_start_;  // the user view, for telling foreign pointers apart
  std::uintptr_t user_size_;
  std::uint32_t root_off_;
  HeapRoot* root_ = nullptr;
  ClassInfo* classes_ = nullptr;
  ThreadRecord* threads_ = nullptr;
  std::atomic<std::uint32_t>* map_ = nullptr;
  std::uint32_t map_entries_ = 0;
  std::uint32_t secret_ = 0;
  bool debug_ = false;
  ProcessId self_;  // this process, as thread records and class locks name it
  HeapSlot slot_{};
  std::uint64_t fast_uid_ = 0;  // slot_.uid, or ~0 (no slot has it) in debug mode: all slow

  std::mutex caches_mu_;
  std::vector<std::unique_ptr<ThreadCache>> caches_;
};

}  // namespace scxkit::internal
