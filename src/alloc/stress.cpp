#include "alloc/stress.hpp"

#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "arena/os.hpp"

namespace scxkit::internal {

namespace {

std::uint32_t pattern(std::uint32_t off, std::uint32_t i) {
  std::uint32_t x = (off + i * 4) * 0x85ebca6bu;
  return x ^ (x >> 13) ^ 0x5bd1e995u;
}

// Word 0 holds the size so the checker knows how far to look.
void fill(std::uint32_t* w, std::uint32_t off, std::uint32_t size) {
  w[0] = size;
  for (std::uint32_t i = 1; i < size / 4; ++i) w[i] = pattern(off, i);
}

bool intact(const std::uint32_t* w, std::uint32_t off) {
  const std::uint32_t size = w[0];
  if (size < 8 || size > (1u << 20)) return false;
  for (std::uint32_t i = 1; i < size / 4; ++i) {
    if (w[i] != pattern(off, i)) return false;
  }
  return true;
}

std::uint32_t random_size(std::mt19937_64& rng) {
  const std::uint32_t r = static_cast<std::uint32_t>(rng() % 1000);
  if (r < 900) return 8 + static_cast<std::uint32_t>(rng() % 505);     // 8..512
  if (r < 990) return 513 + static_cast<std::uint32_t>(rng() % 3584);  // ..4096
  return 4097 + static_cast<std::uint32_t>(rng() % 16384);             // whole pages
}

void check_and_free(SlabHeap& heap, StressShared* s, std::uint32_t off) {
  auto* w = static_cast<std::uint32_t*>(heap.arena().user_addr(off));
  if (!intact(w, off)) s->corruptions.fetch_add(1, std::memory_order_relaxed);
  if (!heap.free(w)) s->corruptions.fetch_add(1, std::memory_order_relaxed);
}

void worker(SlabHeap& heap, StressShared* s, std::uint64_t deadline_ns, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uint64_t ops = 0;
  for (std::uint64_t round = 0; s->stop.load(std::memory_order_relaxed) == 0; ++round) {
    // Check the clock once per 256 rounds: it is a system call under TSan.
    if ((round & 255) == 0 && os::monotonic_ns() >= deadline_ns) break;
    const auto slot = static_cast<std::uint32_t>(rng() % s->slot_count);
    const std::uint32_t size = random_size(rng);
    auto p = heap.alloc(size);
    if (!p) {
      s->failed_allocs.fetch_add(1, std::memory_order_relaxed);
    } else {
      const std::uint32_t off = Arena::offset_of_user(*p);
      fill(static_cast<std::uint32_t*>(*p), off, size);
      ++ops;
      const std::uint32_t old = s->slots()[slot].exchange(off, std::memory_order_acq_rel);
      if (old != 0) {
        check_and_free(heap, s, old);
        ++ops;
      }
      continue;
    }
    // Out of memory: make room by freeing what this slot holds.
    const std::uint32_t old = s->slots()[slot].exchange(0, std::memory_order_acq_rel);
    if (old != 0) check_and_free(heap, s, old);
  }
  s->ops.fetch_add(ops, std::memory_order_relaxed);
}

}  // namespace

Result<std::uint32_t> stress_setup(SlabHeap& heap, std::uint32_t slot_count) {
  const std::size_t bytes = sizeof(StressShared) + std::size_t{slot_count} * 4;
  auto p = heap.alloc(bytes);
  if (!p) return tl::unexpected(std::move(p.error()));
  std::memset(*p, 0, bytes);
  auto* s = static_cast<StressShared*>(*p);
  s->slot_count = slot_count;
  return Arena::offset_of_user(s);
}

StressShared* stress_shared(SlabHeap& heap, std::uint32_t offset) {
  return static_cast<StressShared*>(heap.arena().user_addr(offset));
}

void stress_run(SlabHeap& heap, StressShared* shared, std::uint32_t threads, double seconds,
                std::uint64_t seed, std::uint32_t rank) {
  const std::uint64_t deadline = os::monotonic_ns() + static_cast<std::uint64_t>(seconds * 1e9);
  std::vector<std::thread> pool;
  for (std::uint32_t i = 0; i < threads; ++i) {
    pool.emplace_back(worker, std::ref(heap), shared, deadline,
                      seed * 1'000'003 + std::uint64_t{rank} * 1'009 + i);
  }
  for (auto& t : pool) t.join();
}

StressReport stress_finish(SlabHeap& heap, std::uint32_t offset) {
  StressShared* s = stress_shared(heap, offset);
  for (std::uint32_t i = 0; i < s->slot_count; ++i) {
    const std::uint32_t old = s->slots()[i].exchange(0);
    if (old != 0) check_and_free(heap, s, old);
  }
  StressReport r{s->ops.load(), s->corruptions.load(), s->failed_allocs.load()};
  if (!heap.free(s)) ++r.corruptions;
  return r;
}

}  // namespace scxkit::internal
