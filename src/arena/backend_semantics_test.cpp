// The page semantics every arena backend must have, run on each backend: the
// kernel's BPF arena is the reference, the emulation must behave the same.
// Kernel instances skip (with the reason) where BPF arenas are unavailable.
#include <signal.h>
#include <sys/wait.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "arena/test_support.hpp"

namespace scxkit {
namespace {

using internal::testing_support::create_on;
using internal::testing_support::died_of_segv;
using internal::testing_support::free_aligned_address;
using internal::testing_support::in_child;
using internal::testing_support::kSegvReport;
using internal::testing_support::remap_after_fork;

class PageSemantics : public ::testing::TestWithParam<ArenaBackend> {
 protected:
  // The arena under test, or a skip when this backend cannot exist here.
  Arena* make(std::uint32_t pages, std::uint32_t flags = arena_flags::mmapable,
              std::uint64_t map_extra = 0) {
    auto a =
        create_on(GetParam(), {.max_entries = pages, .map_extra = map_extra, .map_flags = flags});
    if (!a && a.error().code == Errc::unsupported) {
      skip_reason_ = a.error().message;
      return nullptr;
    }
    EXPECT_TRUE(a) << a.error().message;
    if (!a) return nullptr;
    arenas_.push_back(std::move(*a));
    return &arenas_.back();
  }
  void* page(Arena& a, std::uint32_t index) const {
    return reinterpret_cast<void*>(a.user_vm_start() + std::uint64_t{index} * kPageSize);
  }
  std::string skip_reason_;
  std::vector<Arena> arenas_;
};

#define ARENA_OR_SKIP(var, ...)                        \
  Arena* var##_ptr = make(__VA_ARGS__);                \
  if (var##_ptr == nullptr && !skip_reason_.empty()) { \
    GTEST_SKIP() << skip_reason_;                      \
  }                                                    \
  ASSERT_NE(var##_ptr, nullptr);                       \
  Arena& var = *var##_ptr

TEST_P(PageSemantics, AllocWithoutAddressGivesZeroedWritablePagesInTheUserRange) {
  ARENA_OR_SKIP(a, 16);
  auto p = a.alloc_pages(nullptr, 3);
  ASSERT_TRUE(p) << p.error().message;
  const auto at = reinterpret_cast<std::uint64_t>(*p);
  EXPECT_GE(at, a.user_vm_start());
  EXPECT_LE(at + 3 * kPageSize, a.user_vm_end());
  auto* bytes = static_cast<volatile unsigned char*>(*p);
  for (std::size_t i = 0; i < 3 * kPageSize; i += 512) EXPECT_EQ(bytes[i], 0);
  bytes[3 * kPageSize - 1] = 0xab;
  EXPECT_EQ(bytes[3 * kPageSize - 1], 0xab);
  EXPECT_EQ(a.page_state(Arena::offset_of_user(*p) + 2 * kPageSize), PageState::allocated);
}

TEST_P(PageSemantics, AllocAtAnAddressTakesExactlyThosePagesOnce) {
  ARENA_OR_SKIP(a, 16);
  auto p = a.alloc_pages(page(a, 5), 2);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, page(a, 5));
  auto again = a.alloc_pages(page(a, 6), 1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::busy);
  auto overlapping = a.alloc_pages(page(a, 4), 2);
  ASSERT_FALSE(overlapping);
  EXPECT_EQ(overlapping.error().code, Errc::busy);
  ASSERT_TRUE(a.free_pages(page(a, 5), 2));
  auto after = a.alloc_pages(page(a, 6), 1);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, page(a, 6));
}

TEST_P(PageSemantics, FreedPagesComeBackZeroed) {
  ARENA_OR_SKIP(a, 4);
  auto p = a.alloc_pages(page(a, 1), 1);
  ASSERT_TRUE(p);
  std::memset(*p, 0x5a, kPageSize);
  ASSERT_TRUE(a.free_pages(*p, 1));
  auto q = a.alloc_pages(page(a, 1), 1);
  ASSERT_TRUE(q) << q.error().message;
  const auto* bytes = static_cast<const unsigned char*>(*q);
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i;
}

TEST_P(PageSemantics, FreeUsesOnlyTheLow32BitsAndIgnoresUnallocatedPages) {
  ARENA_OR_SKIP(a, 8);
  auto p = a.alloc_pages(page(a, 2), 1);
  ASSERT_TRUE(p);
  // Freeing a range that is mostly unallocated is harmless.
  ASSERT_TRUE(a.free_pages(page(a, 4), 4));
  EXPECT_FALSE(a.alloc_pages(page(a, 2), 1));
  // Upper 32 bits are ignored, as in bpf_arena_free_pages().
  const auto alias = (reinterpret_cast<std::uint64_t>(*p) & 0xffff'ffffull) | (0x1234ull << 32);
  ASSERT_TRUE(a.free_pages(reinterpret_cast<void*>(alias), 1));
  auto again = a.alloc_pages(page(a, 2), 1);
  EXPECT_TRUE(again) << "the page was not freed through its aliased address";
}

TEST_P(PageSemantics, ReserveBlocksAllocationAndRefusesTakenPages) {
  ARENA_OR_SKIP(a, 16);
  ASSERT_TRUE(a.alloc_pages(page(a, 0), 1));
  auto busy = a.reserve_pages(page(a, 0), 2);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, Errc::busy);
  ASSERT_TRUE(a.reserve_pages(page(a, 8), 4));
  auto blocked = a.alloc_pages(page(a, 9), 1);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, Errc::busy);
  auto twice = a.reserve_pages(page(a, 10), 1);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::busy);
  // Freeing a reserved range makes it allocatable again.
  ASSERT_TRUE(a.free_pages(page(a, 8), 4));
  EXPECT_TRUE(a.alloc_pages(page(a, 9), 1));
}

TEST_P(PageSemantics, BadArgumentsGetTheSameErrorsOnEveryBackend) {
  ARENA_OR_SKIP(a, 8);
  EXPECT_EQ(a.alloc_pages(nullptr, 0).error().code, Errc::invalid_argument);
  EXPECT_EQ(a.alloc_pages(nullptr, 9).error().code, Errc::too_big);
  EXPECT_EQ(a.alloc_pages(nullptr, 1, 4096).error().code, Errc::invalid_argument);
  EXPECT_EQ(a.alloc_pages(static_cast<char*>(page(a, 1)) + 8, 1).error().code,
            Errc::invalid_argument);
  EXPECT_EQ(a.alloc_pages(page(a, 7), 2).error().code, Errc::out_of_range);
  EXPECT_EQ(a.reserve_pages(page(a, 0), 0).error().code, Errc::invalid_argument);
  EXPECT_EQ(a.reserve_pages(page(a, 6), 3).error().code, Errc::out_of_range);
  ASSERT_TRUE(a.alloc_pages(nullptr, 8));
  EXPECT_EQ(a.alloc_pages(nullptr, 1).error().code, Errc::no_space);
}

TEST_P(PageSemantics, UserViewTouchOfAnUnallocatedPageAllocatesItLazily) {
  ARENA_OR_SKIP(a, 8);
  auto* p = static_cast<volatile unsigned char*>(page(a, 3));
  EXPECT_EQ(p[100], 0);
  p[100] = 42;
  EXPECT_EQ(a.page_state(Arena::offset_of_user(page(a, 3))), PageState::allocated);
  // The kernel counts the page as allocated now: an allocation there fails...
  auto taken = a.alloc_pages(page(a, 3), 1);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, Errc::busy);
  // ...a reservation too, and a free gives it back.
  EXPECT_EQ(a.reserve_pages(page(a, 3), 1).error().code, Errc::busy);
  ASSERT_TRUE(a.free_pages(page(a, 3), 1));
  ASSERT_TRUE(a.alloc_pages(page(a, 3), 1));
  EXPECT_EQ(p[100], 0);
}

TEST_P(PageSemantics, UserViewTouchOfAReservedPageAllocatesItLazilyToo) {
  ARENA_OR_SKIP(a, 8);
  ASSERT_TRUE(a.reserve_pages(page(a, 2), 1));
  auto* p = static_cast<volatile unsigned char*>(page(a, 2));
  p[0] = 1;
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(a.page_state(Arena::offset_of_user(page(a, 2))), PageState::allocated);
}

TEST_P(PageSemantics, SegvOnFaultMakesATouchOfAnUnallocatedPageFault) {
  ARENA_OR_SKIP(a, 8, arena_flags::mmapable | arena_flags::segv_on_fault);
  auto* p = static_cast<volatile unsigned char*>(page(a, 1));
  // The touch runs in a process that uses the arena: "threadsafe" death tests
  // re-run the test in the child, which creates an arena of its own. (A
  // process merely forked from a user of an emulated arena is no user; its
  // stray touches are not watched — docs/ARENA.md, limits.)
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(p[0] = 1, died_of_segv, kSegvReport);
  // An allocated page is reachable as usual, here and in a child.
  ASSERT_TRUE(a.alloc_pages(page(a, 1), 1));
  p[0] = 1;
  EXPECT_EQ(p[0], 1);
  const int child = in_child([&] {
    if (!remap_after_fork(a)) _exit(3);
    _exit(p[0] == 1 ? 0 : 4);
  });
  EXPECT_TRUE(WIFEXITED(child) && WEXITSTATUS(child) == 0) << "status " << child;
}

TEST_P(PageSemantics, AForkedChildInheritsOnlyTheEmulatedUserView) {
  ARENA_OR_SKIP(a, 4);
  auto* p = static_cast<volatile unsigned char*>(page(a, 0));
  ASSERT_TRUE(a.alloc_pages(page(a, 0), 1));
  p[0] = 9;
  const int status = in_child([&] { _exit(p[0] == 9 ? 0 : 4); });
  if (GetParam() == ArenaBackend::kernel) {
    // The kernel does not copy an arena's user mapping into a child.
    EXPECT_TRUE(died_of_segv(status)) << "status " << status;
  } else {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
}

TEST_P(PageSemantics, AFourGiBAlignedArenaHandsOutPageZero) {
  const std::uint64_t at = free_aligned_address(16 * kPageSize);
  ARENA_OR_SKIP(a, 16, arena_flags::mmapable, at);
  ASSERT_EQ(a.user_vm_start(), at);
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(Arena::offset_of_user(*p), 0u) << "the kernel hands out page 0 first here";
  EXPECT_EQ(*p, reinterpret_cast<void*>(at));
}

// The kernel's placement, pinned: range_tree_find() picks the smallest free
// extent that fits and, among equal sizes, the one changed most recently —
// not the first fit. Offsets in pages from user_vm_start.
TEST_P(PageSemantics, PlacementWithoutAnAddressIsTheKernelsBestFit) {
  ARENA_OR_SKIP(a, 64);
  const auto alloc = [&](std::uint32_t n) -> std::int64_t {
    auto p = a.alloc_pages(nullptr, n);
    if (!p) return -1;
    return static_cast<std::int64_t>((reinterpret_cast<std::uint64_t>(*p) - a.user_vm_start()) /
                                     kPageSize);
  };
  EXPECT_EQ(alloc(8), 0);
  EXPECT_EQ(alloc(8), 8);
  EXPECT_EQ(alloc(8), 16);
  EXPECT_EQ(alloc(8), 24);  // free: [32, 64)
  ASSERT_TRUE(a.free_pages(page(a, 0), 8));
  ASSERT_TRUE(a.free_pages(page(a, 16), 8));  // free: [0, 8) [16, 24) [32, 64)
  EXPECT_EQ(alloc(4), 16);                    // two 8-page extents fit best; [16, 24) changed last
  EXPECT_EQ(alloc(4), 20);                    // [20, 24) is now the smallest that fits
  EXPECT_EQ(alloc(2), 0);                     // [0, 8) beats [32, 64)
  ASSERT_TRUE(a.free_pages(page(a, 8), 8));   // merges into [2, 16)
  EXPECT_EQ(alloc(14), 2);  // exactly fits [2, 16); first fit would agree, best fit must too
  EXPECT_EQ(alloc(16), 32);
  EXPECT_EQ(alloc(16), 48);
  EXPECT_EQ(alloc(1), -1);
}

std::string backend_name(const ::testing::TestParamInfo<ArenaBackend>& info) {
  return info.param == ArenaBackend::kernel ? "kernel" : "emulated";
}

INSTANTIATE_TEST_SUITE_P(Backends, PageSemantics,
                         ::testing::Values(ArenaBackend::emulated, ArenaBackend::kernel),
                         backend_name);

}  // namespace
}  // namespace scxkit
