#include "scxkit/slab.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "alloc/size_class.hpp"
#include "alloc/stress.hpp"
#include "alloc/test_support.hpp"

namespace scxkit {
namespace {

using internal::kClassSizes;

using testing_support::allocated_pages;
using testing_support::created;

SlabHeap make_heap(Arena& a, SlabOptions o = {}) {
  return created(SlabHeap::create(a, o));
}

std::uint32_t off(const void* p) {
  return Arena::offset_of_user(p);
}

std::uint64_t slab_capacity(std::uint32_t size) {
  return (65536 - 128) / size;
}

// Every suite runs on both arena backends.
using SlabAttach = testing_support::OnEachBackend;
using SlabBadFrees = testing_support::OnEachBackend;
using SlabClasses = testing_support::OnEachBackend;
using SlabDebug = testing_support::OnEachBackend;
using SlabGrowth = testing_support::OnEachBackend;
using SlabLarge = testing_support::OnEachBackend;
using SlabNull = testing_support::OnEachBackend;
using SlabStress = testing_support::OnEachBackend;
using SlabThreads = testing_support::OnEachBackend;
using SlabTyped = testing_support::OnEachBackend;

TEST_P(SlabClasses, EveryClassHandsOutDistinctAlignedObjectsAcrossSlabs) {
  Arena a = make_arena(16384);
  SlabHeap heap = make_heap(a);
  for (std::uint32_t size : kClassSizes) {
    const std::uint64_t n = slab_capacity(size) + 3;  // spills into a second slab
    std::vector<char*> got;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto p = heap.alloc(size);
      ASSERT_TRUE(p) << size << ": " << p.error().message;
      auto* c = static_cast<char*>(*p);
      ASSERT_NE(off(c), 0u);
      ASSERT_EQ(off(c) % 8, 0u) << size;
      if (size % 64 == 0) {
        ASSERT_EQ(off(c) % 64, 0u) << size;
      }
      ASSERT_EQ(*heap.usable_size(c), size);
      std::memset(c, static_cast<int>(i), size);
      got.push_back(c);
    }
    std::sort(got.begin(), got.end());
    for (std::size_t i = 1; i < got.size(); ++i) ASSERT_GE(got[i] - got[i - 1], size);
    EXPECT_GE(heap.stats().slabs, 2u) << size;
    for (char* c : got) ASSERT_TRUE(heap.free(c)) << size;
  }
  // Sizes between classes round up to the next class.
  for (std::size_t i = 1; i < kClassSizes.size(); ++i) {
    auto p = heap.alloc(kClassSizes[i - 1] + 1);
    ASSERT_TRUE(p);
    EXPECT_EQ(*heap.usable_size(*p), kClassSizes[i]);
    ASSERT_TRUE(heap.free(*p));
  }
  EXPECT_EQ(heap.stats().bad_frees, 0u);
}

TEST_P(SlabClasses, AFreedObjectIsReusedByTheNextAllocation) {
  Arena a = make_arena(1024);
  SlabHeap heap = make_heap(a);
  auto p = heap.alloc(48);
  ASSERT_TRUE(p);
  ASSERT_TRUE(heap.free(*p));
  auto q = heap.alloc(48);
  ASSERT_TRUE(q);
  EXPECT_EQ(*p, *q);
  ASSERT_TRUE(heap.free(*q));
}

TEST_P(SlabClasses, AlignedRequestsAreAligned) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  for (std::size_t align : {16u, 32u, 64u, 128u, 4096u}) {
    for (std::size_t size : {1u, 24u, 72u, 200u, 1000u, 3000u}) {
      auto p = heap.alloc_aligned(size, align);
      ASSERT_TRUE(p) << p.error().message;
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*p) % align, 0u) << size << "/" << align;
      ASSERT_TRUE(heap.free(*p));
    }
  }
  EXPECT_FALSE(heap.alloc_aligned(8, 24));
  EXPECT_FALSE(heap.alloc_aligned(8, 8192));
}

TEST_P(SlabLarge, RequestsOverAPageTakeWholePagesAndGiveThemBack) {
  Arena a = make_arena(1024);
  SlabHeap heap = make_heap(a);
  const std::uint64_t before = allocated_pages(a);
  auto p = heap.alloc(3 * kPageSize + 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(off(*p) % kPageSize, 0u);
  EXPECT_EQ(*heap.usable_size(*p), 4 * kPageSize);
  EXPECT_EQ(allocated_pages(a), before + 4);
  std::memset(*p, 1, 3 * kPageSize + 1);
  EXPECT_EQ(heap.stats().large_allocations, 1u);
  ASSERT_TRUE(heap.free(*p));
  EXPECT_EQ(allocated_pages(a), before);
  auto huge = heap.alloc(std::size_t{1} << 33);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Errc::too_big);
  auto zero = heap.alloc(0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, Errc::invalid_argument);
}

TEST_P(SlabLarge, AFullArenaIsAnErrorNotACrash) {
  Arena a = make_arena(64);
  SlabHeap heap = make_heap(a);
  auto p = heap.alloc(200 * kPageSize);
  ASSERT_FALSE(p);
  auto q = heap.alloc(62 * kPageSize);  // the root holds a few of the 64 pages
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, Errc::no_space);
  EXPECT_TRUE(heap.alloc(100));
}

// A 4 GiB-aligned user view makes offset 0 a real page: the kernel's page
// allocator hands it out, the heap must not.
TEST_P(SlabNull, OffsetZeroIsNeverHandedOut) {
  const std::uint64_t span = 2 * k4GiB;
  void* probe = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  munmap(probe, span);
  const std::uint64_t aligned = (reinterpret_cast<std::uint64_t>(probe) + k4GiB - 1) & ~(k4GiB - 1);
  Arena a = make_arena(1024, aligned);
  auto page0 = a.alloc_pages(nullptr, 4);
  ASSERT_TRUE(page0);
  ASSERT_EQ(off(*page0), 0u);
  SlabHeap heap = make_heap(a);
  ASSERT_TRUE(a.free_pages(*page0, 4));  // offset 0 is free again
  for (int i = 0; i < 8; ++i) {
    auto p = heap.alloc(2 * kPageSize);
    ASSERT_TRUE(p);
    EXPECT_NE(off(*p), 0u);
  }
  EXPECT_EQ(a.page_state(0), PageState::allocated);  // held by the heap
}

TEST_P(SlabGrowth, SlabsAreAddedOnDemandAndEmptyOnesReturnToTheArena) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  const std::uint64_t base_pages = allocated_pages(a);
  std::vector<void*> objs;
  for (std::uint64_t i = 0; i < 10 * slab_capacity(64); ++i) {
    auto p = heap.alloc(64);
    ASSERT_TRUE(p);
    objs.push_back(*p);
  }
  EXPECT_EQ(heap.stats().slabs, 10u);
  EXPECT_EQ(allocated_pages(a), base_pages + 10 * 16);
  for (void* p : objs) ASSERT_TRUE(heap.free(p));
  // The full slabs went back, but for the thread's current one and one
  // empty slab the class keeps for reuse.
  EXPECT_EQ(heap.stats().slabs, 2u);
  EXPECT_EQ(heap.stats().empty_slabs_kept, 1u);
  EXPECT_EQ(heap.stats().slabs_released, 8u);
  EXPECT_EQ(allocated_pages(a), base_pages + 2 * 16);
}

TEST_P(SlabGrowth, FreesFromAnotherThreadReturnSlabsToo) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  const std::uint64_t base_pages = allocated_pages(a);
  std::vector<void*> objs;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < 4 * slab_capacity(256); ++i) objs.push_back(*heap.alloc(256));
  });
  producer.join();  // its exit let its current slab go too
  std::thread consumer([&] {
    for (void* p : objs) ASSERT_TRUE(heap.free(p));
  });
  consumer.join();
  EXPECT_EQ(heap.stats().slabs, 1u);  // the class's one kept empty slab
  EXPECT_EQ(heap.stats().empty_slabs_kept, 1u);
  EXPECT_EQ(allocated_pages(a), base_pages + 16);
}

TEST_P(SlabBadFrees, AreRefusedAndLeaveTheHeapIntact) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  auto p = heap.alloc(64);
  auto big = heap.alloc(2 * kPageSize);
  ASSERT_TRUE(p && big);
  int on_stack = 0;
  auto page = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(page);
  auto* c = static_cast<char*>(*p);
  const std::vector<std::pair<const void*, const char*>> bad = {
      {&on_stack, "not in the arena"},
      {*page, "did not allocate"},
      {c + 1, "inside an object"},
      {c + 8, "inside an object"},
      {c + 64 * 5, "never handed out"},
      {a.user_addr(heap.root_offset()), "did not allocate"},
      {static_cast<char*>(*big) + 8, "inside a large"},
      {static_cast<char*>(*big) + kPageSize, "inside a large"},
  };
  for (const auto& [ptr, why] : bad) {
    auto r = heap.free(ptr);
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }
  ASSERT_TRUE(heap.free(c));
  auto twice = heap.free(c);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("double free"), std::string::npos);
  ASSERT_TRUE(heap.free(*big));
  EXPECT_FALSE(heap.free(*big));
  // A double free from another thread goes the remote way; refused as well.
  auto q = heap.alloc(64);
  ASSERT_TRUE(q);
  std::thread([&] {
    EXPECT_TRUE(heap.free(*q));
    EXPECT_FALSE(heap.free(*q));
  }).join();
  EXPECT_EQ(heap.stats().bad_frees, bad.size() + 3);
  // Nothing was corrupted: a slab's worth of objects are all distinct.
  std::vector<void*> objs;
  for (std::uint64_t i = 0; i < slab_capacity(64) + 10; ++i) objs.push_back(*heap.alloc(64));
  std::sort(objs.begin(), objs.end());
  EXPECT_EQ(std::adjacent_find(objs.begin(), objs.end()), objs.end());
}

TEST_P(SlabDebug, FreedMemoryIsFilledAndWritesToItAreCounted) {
  Arena a = make_arena(1024);
  SlabHeap heap = make_heap(a, {.debug = true});
  auto p = heap.alloc(128);
  ASSERT_TRUE(p);
  auto* b = static_cast<unsigned char*>(*p);
  ASSERT_TRUE(heap.free(b));
  for (int i = 8; i < 128; ++i) ASSERT_EQ(b[i], 0xdf) << i;
  b[100] = 1;  // a use after free
  auto q = heap.alloc(128);
  ASSERT_EQ(*q, *p);
  EXPECT_EQ(heap.stats().pattern_violations, 1u);
  EXPECT_FALSE(heap.free(static_cast<char*>(*q) + 8));
  ASSERT_TRUE(heap.free(*q));
  EXPECT_FALSE(heap.free(*q));
}

TEST_P(SlabAttach, ASecondHandleSharesTheHeapAndBadRootsAreRefused) {
  Arena a = make_arena(1024);
  SlabHeap heap = make_heap(a);
  auto other = SlabHeap::attach(a, heap.root_offset());
  ASSERT_TRUE(other) << other.error().message;
  auto p = heap.alloc(100);
  ASSERT_TRUE(p);
  EXPECT_TRUE(other->free(*p));  // either handle frees the other's objects
  EXPECT_FALSE(SlabHeap::attach(a, heap.root_offset() + 8));
  auto page = a.alloc_pages(nullptr, 1);
  auto wrong = SlabHeap::attach(a, off(*page));
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("no slab heap"), std::string::npos);
}

struct Point {
  int x = 1, y = 2;
  ArenaPtr<Point> next;
};

TEST_P(SlabTyped, MakeReturnsArenaPointersValidInBothViews) {
  Arena a = make_arena(1024);
  SlabHeap heap = make_heap(a);
  auto p = heap.make<Point>(Point{7, 8, {}});
  ASSERT_TRUE(p);
  auto arr = heap.make_array<Point>(100);
  ASSERT_TRUE(arr);
  p->in(a.user_view())->next = *arr;
  EXPECT_EQ(p->in(a.user_view())->next.in(a.user_view())[99].y, 2);
  // The kernel view is dereferenceable here only on the emulated backend (a
  // kernel arena's belongs to its BPF programs).
  auto kv = a.kern_view();
  ASSERT_EQ(kv.has_value(), !kernel());
  if (kv) {
    EXPECT_EQ(p->in(*kv)->x, 7);
    EXPECT_EQ(p->in(*kv)->next.in(*kv)[99].y, 2);
  }
  EXPECT_TRUE(heap.destroy(*arr, 100));
  EXPECT_TRUE(heap.destroy(*p));
  EXPECT_FALSE(heap.destroy(*p));
  EXPECT_FALSE(heap.make_array<Point>(0));
}

TEST_P(SlabTyped, StdContainersLiveInTheArena) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  {
    std::vector<int, ArenaAllocator<int>> v{ArenaAllocator<int>(heap)};
    for (int i = 0; i < 10000; ++i) v.push_back(i);
    EXPECT_GE(reinterpret_cast<std::uintptr_t>(v.data()), a.user_vm_start());
    EXPECT_LT(reinterpret_cast<std::uintptr_t>(v.data()), a.user_vm_end());
    using MapAlloc = ArenaAllocator<std::pair<const int, int>>;
    std::map<int, int, std::less<>, MapAlloc> m{MapAlloc(heap)};
    for (int i = 0; i < 1000; ++i) m[i] = i * i;
    EXPECT_EQ(m[999], 999 * 999);
  }
  EXPECT_EQ(heap.stats().large_allocations, 0u);
  EXPECT_EQ(heap.stats().bad_frees, 0u);
}

TEST_P(SlabThreads, AnExitingThreadsEmptySlabsGoBack) {
  Arena a = make_arena(4096);
  SlabHeap heap = make_heap(a);
  std::thread([&] {
    for (std::uint32_t size : kClassSizes) {
      auto p = heap.alloc(size);
      ASSERT_TRUE(p);
      ASSERT_TRUE(heap.free(*p));
    }
    EXPECT_EQ(heap.stats().slabs, kClassSizes.size());
  }).join();
  EXPECT_EQ(heap.stats().slabs, 0u);
}

TEST_P(SlabStress, ThreadsHandingObjectsAroundFindNoCorruption) {
  if (testing_support::kThreadSanitizer && kernel()) {
    GTEST_SKIP() << testing_support::kKernelArenaUnderTsan;
  }
  Arena a = make_arena(65536);
  SlabHeap heap = make_heap(a);
  auto shared = internal::stress_setup(heap, 4096);
  ASSERT_TRUE(shared) << shared.error().message;
  internal::stress_run(heap, internal::stress_shared(heap, *shared), 4, 1.5, 42, 0);
  const internal::StressReport r = internal::stress_finish(heap, *shared);
  EXPECT_GT(r.ops, 1000u);
  EXPECT_EQ(r.corruptions, 0u);
  EXPECT_EQ(heap.stats().bad_frees, 0u);
  // Everything was freed: every slab and page went back but the kept ones.
  EXPECT_EQ(heap.stats().slabs, heap.stats().empty_slabs_kept);
  EXPECT_LE(heap.stats().empty_slabs_kept, 8 * kClassSizes.size());
  EXPECT_EQ(heap.stats().large_allocations, 0u);
}

TEST_P(SlabStress, DebugModeSeesNoWritesToFreedMemoryUnderStress) {
  if (testing_support::kThreadSanitizer && kernel()) {
    GTEST_SKIP() << testing_support::kKernelArenaUnderTsan;
  }
  Arena a = make_arena(65536);
  SlabHeap heap = make_heap(a, {.debug = true});
  auto shared = internal::stress_setup(heap, 1024);
  ASSERT_TRUE(shared);
  internal::stress_run(heap, internal::stress_shared(heap, *shared), 3, 1.0, 7, 0);
  const internal::StressReport r = internal::stress_finish(heap, *shared);
  EXPECT_EQ(r.corruptions, 0u);
  EXPECT_EQ(heap.stats().pattern_violations, 0u);
}

SCXKIT_ON_EACH_BACKEND(SlabAttach);
SCXKIT_ON_EACH_BACKEND(SlabBadFrees);
SCXKIT_ON_EACH_BACKEND(SlabClasses);
SCXKIT_ON_EACH_BACKEND(SlabDebug);
SCXKIT_ON_EACH_BACKEND(SlabGrowth);
SCXKIT_ON_EACH_BACKEND(SlabLarge);
SCXKIT_ON_EACH_BACKEND(SlabNull);
SCXKIT_ON_EACH_BACKEND(SlabStress);
SCXKIT_ON_EACH_BACKEND(SlabThreads);
SCXKIT_ON_EACH_BACKEND(SlabTyped);

}  // namespace
}  // namespace scxkit
