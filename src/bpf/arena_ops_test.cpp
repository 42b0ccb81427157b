// The arena page programs compile, load against a real BPF arena map and
// allocate through the kernel's allocator: pages C++ gets are the pages the
// kernel maps for the arena.
#include "bpf/arena_ops.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "bpf/bpf_syscall.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::bpf {
namespace {

constexpr std::uint32_t kPages = 16;

struct KernelArenaFixture : ::testing::Test {
  Fd map;
  void* base = nullptr;
  std::unique_ptr<ArenaOps> ops;

  void SetUp() override {
    auto fd = create_arena_map(kPages, 0, arena_flags::mmapable);
    if (!fd) GTEST_SKIP() << "no kernel BPF arena here: " << fd.error().message;
    map = std::move(*fd);
    // The verifier needs the arena's user address, fixed by the first mmap.
    base = mmap(nullptr, kPages * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, map.get(), 0);
    ASSERT_NE(base, MAP_FAILED) << std::strerror(errno);
    auto loaded = ArenaOps::load(map.get());
    if (!loaded && loaded.error().code == Errc::unsupported) {
      GTEST_SKIP() << loaded.error().message;
    }
    ASSERT_TRUE(loaded) << loaded.error().message;
    ops = std::make_unique<ArenaOps>(std::move(*loaded));
  }
  void TearDown() override {
    ops.reset();
    if (base != nullptr && base != MAP_FAILED) munmap(base, kPages * kPageSize);
  }
  std::uint64_t user(std::uint32_t page) const {
    return reinterpret_cast<std::uintptr_t>(base) + std::uint64_t{page} * kPageSize;
  }
};

TEST_F(KernelArenaFixture, AllocatedPageIsInTheUserMappingAndWritable) {
  auto p = ops->alloc_pages(0, 1, kNumaNoNode);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_NE(*p, 0u);
  ASSERT_GE(*p, user(0));
  ASSERT_LT(*p, user(kPages));
  auto* bytes = reinterpret_cast<volatile std::uint8_t*>(*p);
  EXPECT_EQ(bytes[0], 0);
  bytes[0] = 0x5a;
  EXPECT_EQ(bytes[0], 0x5a);
}

TEST_F(KernelArenaFixture, FixedAddressIsTakenOnceThenFreeable) {
  auto first = ops->alloc_pages(user(3), 2, kNumaNoNode);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, user(3));
  auto again = ops->alloc_pages(user(4), 1, kNumaNoNode);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, 0u) << "the kernel handed out an allocated page twice";
  ASSERT_TRUE(ops->free_pages(user(3), 2));
  auto after = ops->alloc_pages(user(4), 1, kNumaNoNode);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, user(4));
}

TEST_F(KernelArenaFixture, ReserveRefusesAllocatedPagesAndBlocksAllocation) {
  auto p = ops->alloc_pages(user(0), 1, kNumaNoNode);
  ASSERT_TRUE(p && *p == user(0));
  auto busy = ops->reserve_pages(user(0), 2);
  ASSERT_TRUE(busy) << busy.error().message;
  if (*busy == -EOPNOTSUPP) GTEST_SKIP() << "this kernel has no bpf_arena_reserve_pages";
  EXPECT_EQ(*busy, -EBUSY);
  auto ok = ops->reserve_pages(user(8), 2);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 0);
  auto blocked = ops->alloc_pages(user(8), 1, kNumaNoNode);
  ASSERT_TRUE(blocked);
  EXPECT_EQ(*blocked, 0u);
}

}  // namespace
}  // namespace scxkit::bpf
