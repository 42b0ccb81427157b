// C++ and real BPF programs on one kernel arena: lists built by one side are
// walked by the other through 32-bit arena pointers, and pages allocated at
// the same time by both sides never overlap.
#include <bpf/libbpf.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bpf/arena_inspect.hpp"
#include "bpf/arena_ops.hpp"
#include "bpf/bpf_syscall.hpp"
#include "bpf/libbpf_util.hpp"
#include "interop.h"
#include "interop.skel.h"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit::bpf {
namespace {

constexpr std::uint32_t kArenaPages = 2048;

// A kernel arena mapped in this process, the test's BPF object loaded against
// it, and the C++ side's page allocator (the kernel's, through ArenaOps).
struct InteropFixture : ::testing::Test {
  Fd map;
  std::unique_ptr<ArenaMapping> mapping;
  interop* skel = nullptr;
  std::unique_ptr<ArenaOps> ops;

  void SetUp() override {
    auto fd = create_arena_map(kArenaPages, 0, arena_flags::mmapable);
    if (!fd) GTEST_SKIP() << "no kernel BPF arena here: " << fd.error().message;
    map = std::move(*fd);
    auto m = map_kernel_arena(map.get());
    ASSERT_TRUE(m) << m.error().message;
    mapping = std::make_unique<ArenaMapping>(std::move(*m));
    skel = interop__open();
    ASSERT_NE(skel, nullptr);
    ASSERT_EQ(bpf_map__reuse_fd(skel->maps.arena, map.get()), 0);
    // This kernel has arenas (the map exists), so a refused program is a bug.
    ASSERT_EQ(interop__load(skel), 0) << "the interop BPF programs did not load; see the log above";
    auto loaded = ArenaOps::load(map.get());
    ASSERT_TRUE(loaded) << loaded.error().message;
    ops = std::make_unique<ArenaOps>(std::move(*loaded));
  }
  void TearDown() override { interop__destroy(skel); }

  test_list_args run_list(const bpf_program* prog, test_list_args args) {
    auto r = test_run(prog, &args, sizeof(args));
    EXPECT_TRUE(r) << r.error().message;
    return args;
  }
};

std::uint64_t checksum_of(const std::vector<std::uint64_t>& values) {
  std::uint64_t sum = 0;
  for (std::uint64_t v : values) sum = TEST_CHECKSUM_STEP(sum, v);
  return sum;
}

TEST_F(InteropFixture, BpfProgramWalksAListCppBuiltWithArenaPointers) {
  // 1500 nodes over 8 pages the kernel allocator gave C++, linked in a
  // shuffled order so that links cross pages in both directions.
  constexpr std::uint32_t kPages = 8, kNodes = 1500;
  auto first = ops->alloc_pages(0, kPages, kNumaNoNode);
  ASSERT_TRUE(first && *first != 0) << "the kernel arena gave C++ no pages";
  auto* slots = reinterpret_cast<test_node*>(*first + TEST_FIRST_NODE_OFFSET);
  std::vector<std::uint32_t> order(kNodes);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  std::vector<std::uint64_t> values;
  for (std::uint32_t i = 0; i < kNodes; ++i) {
    test_node& n = slots[order[i]];
    n.value = 1000003ull * i + 17;
    n.next = i + 1 < kNodes ? ArenaPtr<test_node>::from(mapping->view(), &slots[order[i + 1]])
                            : ArenaPtr<test_node>();
    values.push_back(n.value);
  }
  const auto head = ArenaPtr<test_node>::from(mapping->view(), &slots[order[0]]);

  const auto out = run_list(skel->progs.list_sum, {.head = head.offset()});
  EXPECT_EQ(out.count, kNodes);
  EXPECT_EQ(out.sum, checksum_of(values));
}

TEST_F(InteropFixture, CppWalksAListABpfProgramBuilt) {
  constexpr std::uint32_t kNodes = 3000;
  constexpr std::uint64_t kSeed = 99;
  const auto built = run_list(skel->progs.list_build, {.count = kNodes, .seed = kSeed});
  ASSERT_NE(built.first_page, 0u) << "the BPF program could not allocate its pages";
  ASSERT_GE(built.first_page, mapping->user_vm_start());
  ASSERT_LT(built.first_page, mapping->user_vm_end());

  std::vector<std::uint64_t> walked;
  for (const test_node* n = ArenaPtr<test_node>(built.head).in(mapping->view());
       n != nullptr && walked.size() <= kNodes; n = n->next.in(mapping->view())) {
    walked.push_back(n->value);
  }
  ASSERT_EQ(walked.size(), kNodes);
  for (std::uint32_t i = 0; i < kNodes; ++i) ASSERT_EQ(walked[i], kSeed + 7 * i) << "node " << i;
  // And the BPF walker agrees with C++ on the same list.
  const auto out = run_list(skel->progs.list_sum, {.head = built.head});
  EXPECT_EQ(out.count, kNodes);
  EXPECT_EQ(out.sum, checksum_of(walked));
}

TEST_F(InteropFixture, CppAndBpfAllocatingAtTheSameTimeNeverGetTheSamePage) {
  constexpr std::uint32_t kEach = 600;
  std::vector<std::uint64_t> cpp_pages, bpf_pages;
  std::string cpp_error, bpf_error;
  std::thread cpp([&] {
    for (std::uint32_t i = 0; i < kEach; ++i) {
      auto p = ops->alloc_pages(0, 1, kNumaNoNode);
      if (!p || *p == 0) {
        cpp_error = p ? "C++ allocation failed" : p.error().message;
        return;
      }
      *reinterpret_cast<std::uint64_t*>(*p) = (1ull << 32) | i;
      cpp_pages.push_back(*p);
    }
  });
  std::thread bpf([&] {
    for (std::uint32_t i = 0; i < kEach; ++i) {
      test_tag_args args{.tag = (2ull << 32) | i, .addr = 0};
      auto r = test_run(skel->progs.page_tag, &args, sizeof(args));
      if (!r || args.addr == 0) {
        bpf_error = r ? "BPF allocation failed" : r.error().message;
        return;
      }
      bpf_pages.push_back(args.addr);
    }
  });
  cpp.join();
  bpf.join();
  ASSERT_EQ(cpp_error, "");
  ASSERT_EQ(bpf_error, "");

  std::set<std::uint64_t> all(cpp_pages.begin(), cpp_pages.end());
  all.insert(bpf_pages.begin(), bpf_pages.end());
  EXPECT_EQ(all.size(), 2u * kEach) << "a page was handed out twice";
  // Every page still holds its owner's tag: nobody wrote over anybody.
  for (std::uint32_t i = 0; i < kEach; ++i) {
    EXPECT_EQ(*reinterpret_cast<std::uint64_t*>(cpp_pages[i]), (1ull << 32) | i);
    EXPECT_EQ(*reinterpret_cast<std::uint64_t*>(bpf_pages[i]), (2ull << 32) | i);
  }
  // The kernel agrees: exactly these pages are backed.
  auto inspector = ArenaInspector::load(map.get());
  ASSERT_TRUE(inspector) << inspector.error().message;
  auto backed = inspector->backed_pages(kArenaPages);
  ASSERT_TRUE(backed) << backed.error().message;
  std::set<std::uint64_t> seen;
  for (std::uint32_t i = 0; i < kArenaPages; ++i) {
    if ((*backed)[i]) seen.insert(mapping->user_vm_start() + std::uint64_t{i} * kPageSize);
  }
  EXPECT_EQ(seen, all);
}

}  // namespace
}  // namespace scxkit::bpf
