// A larson/threadtest-style stress of a SlabHeap, shared by the tests and
// `scxkit arena stress`: threads (in one or more processes) hand objects to
// each other through an array of slots in the arena. Every allocation has a
// random size (fixed seed), every word of it is written with a pattern
// derived from its offset, and whoever takes it out of a slot checks every
// word before freeing it. Any mismatch, or a refused free of a live object, is
// a corruption.
#pragma once

#include <atomic>
#include <cstdint>

#include "scxkit/slab.hpp"

namespace scxkit::internal {

// Lives in the arena, so processes sharing the heap share it too.
struct StressShared {
  std::atomic<std::uint32_t> stop;
  std::uint32_t slot_count;
  std::atomic<std::uint64_t> ops;  // allocations + frees
  std::atomic<std::uint64_t> corruptions;
  std::atomic<std::uint64_t> failed_allocs;  // the arena was full: not an error, counted
  // Followed by slot_count object offsets, 0 = empty.
  std::atomic<std::uint32_t>* slots() {
    return reinterpret_cast<std::atomic<std::uint32_t>*>(this + 1);
  }
};

struct StressReport {
  std::uint64_t ops = 0;
  std::uint64_t corruptions = 0;
  std::uint64_t failed_allocs = 0;
};

// The shared block, allocated from the heap; returns its arena offset.
Result<std::uint32_t> stress_setup(SlabHeap& heap, std::uint32_t slot_count);
StressShared* stress_shared(SlabHeap& heap, std::uint32_t offset);
// Runs `threads` threads for `seconds` (or until stop is set); thread i of
// process `rank` seeds its generator with seed, rank and i.
void stress_run(SlabHeap& heap, StressShared* shared, std::uint32_t threads, double seconds,
                std::uint64_t seed, std::uint32_t rank);
// Checks and frees what is left in the slots, then the block itself.
StressReport stress_finish(SlabHeap& heap, std::uint32_t offset);

}  // namespace scxkit::internal
