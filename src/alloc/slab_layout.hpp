// The slab allocator's metadata as it lies in the arena: versioned, with
// fixed-width fields only, so another process mapping the arena (or a BPF
// program) can read it. docs/ALLOCATORS.md describes the same layout; change
// both together and bump kHeapVersion.
//
// Every link is a 32-bit arena offset (0 = none), valid in every view.
#pragma once

#include <atomic>
#include <cstdint>

#include "scxkit/arena.hpp"

namespace scxkit::internal {

inline constexpr std::uint32_t kHeapMagic = 0x70616568;  // "heap"
inline constexpr std::uint32_t kSlabMagic = 0x62616c73;  // "slab"
inline constexpr std::uint16_t kHeapVersion = 2;
inline constexpr std::uint32_t kSlabPages = 16;  // 64 KiB per slab, every class
inline constexpr std::uint32_t kSlabBytes = kSlabPages * kPageSize;
inline constexpr std::uint32_t kSlabHeaderBytes = 128;  // objects start here
inline constexpr std::uint32_t kHeapFlagDebug = 1;

// Page map entries: one u32 per arena page, tagged in the low bits (every
// value it points at is page aligned).
inline constexpr std::uint32_t kMapLowMask = 0xfff;  // below the page offset: tag and class
inline constexpr std::uint32_t kMapTagBits = 0x7;
inline constexpr std::uint32_t kMapClassShift = 3;  // slab entries carry the size class
inline constexpr std::uint32_t kMapSlab = 1;        // offset of the slab's header | class << 3 | 1
inline constexpr std::uint32_t kMapLargeHead = 2;   // (pages << 12) | 2
inline constexpr std::uint32_t kMapLargeBody = 3;   // offset of the first page | 3
inline constexpr std::uint32_t kMapHeld = 4;        // page 0, held so it is never handed out

// Slab states, in the top two bits of SlabHeader::remote.
inline constexpr std::uint64_t kSlabAttached = 0;   // owned by a thread; frees by others queue here
inline constexpr std::uint64_t kSlabFull = 1;       // ownerless, every object out, on no list
inline constexpr std::uint64_t kSlabListed = 2;     // ownerless, on its class's partial list
inline constexpr std::uint64_t kSlabReleasing = 3;  // empty, being given back to the arena

// remote = head offset (bits 0-31) | pending count (32-61) | state (62-63).
inline constexpr std::uint64_t remote_word(std::uint32_t head, std::uint32_t count,
                                           std::uint64_t state) {
  return std::uint64_t{head} | (std::uint64_t{count} << 32) | (state << 62);
}
inline constexpr std::uint32_t remote_head(std::uint64_t w) {
  return static_cast<std::uint32_t>(w);
}
inline constexpr std::uint32_t remote_count(std::uint64_t w) {
  return static_cast<std::uint32_t>(w >> 32) & 0x3fffffff;
}
inline constexpr std::uint64_t remote_state(std::uint64_t w) {
  return w >> 62;
}

// The first 128 bytes of every slab. Line 0 is written by the owning thread
// only (and read by others only when the owner is dead); line 1 is what other
// threads and processes touch when they free into the slab.
struct SlabHeader {
  // --- line 0 ---
  std::uint32_t magic;
  std::uint16_t size_class;
  std::uint16_t pages;
  std::uint32_t object_size;
  std::uint32_t capacity;
  std::uint32_t inverse;    // ceil(2^32 / object_size): exact division test
  std::uint32_t free_head;  // owner's free list, linked through word 0 of free objects
  // Objects out when the slab lost its owner. Atomic: a remote free may read
  // it while a new owner lets the slab go again (its check is then redone
  // under the class lock).
  std::atomic<std::uint32_t> detached_used;
  std::uint32_t reserved0[9];
  // --- line 1 ---
  alignas(64) std::atomic<std::uint64_t> remote;  // frees from non-owners, and the state
  std::atomic<std::uint32_t> owner;               // thread record index + 1; 0 = ownerless
  std::atomic<std::uint32_t> bump;                // objects [bump, capacity) were never handed out
  std::uint32_t list_next;                        // class partial list, under the class lock
  std::uint32_t list_prev;
  std::uint32_t on_list;  // 0 no, 1 yes, 2 yes and empty (counted in empty_listed)
  std::uint32_t reserved1[9];
};
static_assert(sizeof(SlabHeader) == kSlabHeaderBytes);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// One per size class, one cache line each.
struct ClassInfo {
  std::uint32_t object_size;
  std::uint32_t capacity;
  std::atomic<std::uint64_t> lock;       // holder's ProcessId (pid | start << 32), 0 = free
  std::atomic<std::uint32_t> list_head;  // partial slabs (state kSlabListed)
  std::atomic<std::uint32_t> list_length;
  std::atomic<std::uint32_t> empty_listed;  // listed slabs with nothing in use (<= empty_keep)
  std::atomic<std::uint32_t> releasing;     // slabs unlisted, their pages going back now
  std::uint32_t reserved[8];
};
static_assert(sizeof(ClassInfo) == 64);

// One per thread that uses the heap, in any process.
struct ThreadRecord {
  std::atomic<std::uint64_t> process;  // the ProcessId (pid | start << 32); 0 = free
  std::uint32_t tid;
  std::uint32_t reserved;
};
static_assert(sizeof(ThreadRecord) == 16);

// At the heap's root offset. Offsets of the tables are from the root.
struct HeapRoot {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t root_pages;  // pages the root region spans
  std::uint32_t page_size;
  std::uint32_t map_entries;  // pages covered by the page map (the arena's max_entries)
  std::uint32_t slab_pages;
  std::uint32_t slab_header_bytes;
  std::uint32_t class_count;
  std::uint32_t classes_at;  // ClassInfo[class_count]
  std::uint32_t max_threads;
  std::uint32_t threads_at;  // ThreadRecord[max_threads]
  std::uint32_t map_at;      // u32[map_entries]
  std::uint32_t flags;       // kHeapFlag*
  std::uint32_t secret;      // mixes the freed-object tag
  std::uint32_t empty_keep;  // empty slabs a class keeps listed for reuse
  std::uint32_t reserved[2];
  // Counters, for every process's stats.
  alignas(64) std::atomic<std::uint64_t> bad_frees;
  std::atomic<std::uint64_t> pattern_violations;  // debug mode: freed memory written
  std::atomic<std::uint64_t> slabs_created;
  std::atomic<std::uint64_t> slabs_released;
  std::atomic<std::uint64_t> objects_of_dead_threads;  // in use in slabs recovered from them
};
static_assert(sizeof(HeapRoot) <= 512);

// Word 1 of every free object: says "free" with 2^-32 odds of a live
// object's data looking the same, keyed by the heap's secret.
inline std::uint32_t free_tag(std::uint32_t secret, std::uint32_t off) {
  std::uint32_t x = (off ^ secret) * 0x9e3779b1u;
  return (x ^ (x >> 15)) | 1;  // never 0, which alloc writes
}

}  // namespace scxkit::internal
