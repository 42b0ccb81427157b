// Looking inside a kernel arena tells its real layout and exactly which pages
// have memory, and changes nothing.
#include "bpf/arena_inspect.hpp"

#include <sys/mman.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "bpf/arena_ops.hpp"
#include "bpf/bpf_syscall.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit::bpf {
namespace {

constexpr std::uint32_t kPages = 32;

struct InspectTest : ::testing::Test {
  Fd map;
  void SetUp() override {
    auto fd = create_arena_map(kPages, 0, arena_flags::mmapable);
    if (!fd) GTEST_SKIP() << "no kernel BPF arena here: " << fd.error().message;
    map = std::move(*fd);
  }
  std::uint32_t count_backed(ArenaInspector& in) {
    auto backed = in.backed_pages(kPages);
    EXPECT_TRUE(backed) << backed.error().message;
    return backed ? static_cast<std::uint32_t>(std::count(backed->begin(), backed->end(), true))
                  : 0;
  }
};

TEST_F(InspectTest, AnArenaNobodyMappedHasNoAddressYetAndInspectingDoesNotFixOne) {
  auto in = ArenaInspector::load(map.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::not_found) << in.error().message;
  // Still unfixed: the first mapping may go anywhere, as for any fresh arena.
  auto view = map_kernel_arena(map.get());
  ASSERT_TRUE(view) << view.error().message;
  auto after = ArenaInspector::load(map.get());
  ASSERT_TRUE(after) << after.error().message;
  auto layout = after->layout();
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->user_vm_start, view->user_vm_start());
  EXPECT_EQ(layout->user_vm_end, view->user_vm_end());
}

TEST_F(InspectTest, BackedPagesAreExactlyTheAllocatedAndFaultedOnesNotTheReserved) {
  auto view = map_kernel_arena(map.get());
  ASSERT_TRUE(view) << view.error().message;
  auto ops = ArenaOps::load(map.get());
  ASSERT_TRUE(ops) << ops.error().message;
  const std::uint64_t start = view->user_vm_start();
  ASSERT_EQ(*ops->alloc_pages(start + 2 * kPageSize, 3, kNumaNoNode), start + 2 * kPageSize);
  auto reserved = ops->reserve_pages(start + 10 * kPageSize, 4);
  ASSERT_TRUE(reserved);
  *static_cast<volatile char*>(reinterpret_cast<void*>(start + 20 * kPageSize)) = 1;  // a fault

  auto in = ArenaInspector::load(map.get());
  ASSERT_TRUE(in) << in.error().message;
  auto backed = in->backed_pages(kPages);
  ASSERT_TRUE(backed) << backed.error().message;
  for (std::uint32_t i = 0; i < kPages; ++i) {
    const bool want = (i >= 2 && i < 5) || i == 20;
    EXPECT_EQ((*backed)[i], want) << "page " << i;
  }
  // Looking again finds the same: the probe allocated nothing.
  EXPECT_EQ(count_backed(*in), 4u);
  EXPECT_EQ(count_backed(*in), 4u);
  // And a freed page is gone from the kernel view at once.
  ASSERT_TRUE(ops->free_pages(start + 3 * kPageSize, 1));
  EXPECT_EQ(count_backed(*in), 3u);
}

TEST_F(InspectTest, AnArenaWithMapExtraIsMappedAtThatAddress) {
  // A 4 GiB-aligned address the OS would hand out now: inside a fresh 8 GiB
  // reservation, released again.
  void* probe = mmap(nullptr, 2 * k4GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  const std::uint64_t fixed = (reinterpret_cast<std::uint64_t>(probe) + k4GiB - 1) & ~(k4GiB - 1);
  munmap(probe, 2 * k4GiB);
  auto fd = create_arena_map(kPages, fixed, arena_flags::mmapable);
  ASSERT_TRUE(fd) << fd.error().message;
  auto view = map_kernel_arena(fd->get());
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_EQ(view->user_vm_start(), fixed);
  EXPECT_EQ(view->view().base, fixed);  // 4 GiB aligned: page 0 is arena offset 0
  auto in = ArenaInspector::load(fd->get());
  ASSERT_TRUE(in);
  EXPECT_EQ(in->layout()->user_vm_start, fixed);
}

}  // namespace
}  // namespace scxkit::bpf
