// cmasks in an arena through the pool, and the kernel's per-CPU set_cmask
// scratch: created at enable, handed to BPF as arena addresses, freed at
// disable.
#include "scxkit/arena_cmask.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "cmask/test_support.hpp"

namespace scxkit {
namespace {

using cmask_testing::slurp;

Arena make_arena(std::uint32_t pages, std::string name = "") {
  ArenaOptions o;
  o.max_entries = pages;
  o.name = std::move(name);
  auto a = Arena::create(o);
  EXPECT_TRUE(a) << a.error().message;
  return std::move(*a);
}

CidTable machine(const TopologySpec& spec) {
  auto m = describe_topology(spec);
  EXPECT_TRUE(m) << m.error().message;
  return *CidTable::build(*m);
}

// The cmask at `offset`, read back through the user view, as a process that
// mmaps the arena (or BPF code) sees it.
Result<Cmask> user_view(const Arena& arena, std::uint32_t offset, std::size_t size) {
  return Cmask::attach({static_cast<std::byte*>(arena.user_addr(offset)), size});
}

cpu_set_t cpus_of(std::initializer_list<int> list) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : list) CPU_SET(cpu, &set);
  return set;
}

TEST(ArenaCmask, PoolCmasksLiveInTheArenaAndEveryViewSeesThem) {
  Arena arena = make_arena(64);
  auto pool = Pool::create(arena);
  ASSERT_TRUE(pool) << pool.error().message;
  auto a = alloc_arena_cmask(arena, *pool, 100, 300, 400);
  auto b = alloc_arena_cmask(arena, *pool, 0, 64, 64);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_NE(a->offset, 0u);
  EXPECT_NE(a->offset, b->offset);
  EXPECT_EQ(a->offset % 8, 0u);
  EXPECT_EQ(pool->stats().allocations, 2u);
  EXPECT_GE(pool->stats().bytes_in_use, cmask_bytes(400) + cmask_bytes(64));
  ASSERT_TRUE(a->mask.assign_cidlist("100,250-260,399"));
  auto seen = user_view(arena, a->offset, cmask_bytes(400));
  ASSERT_TRUE(seen) << seen.error().message;
  EXPECT_EQ(seen->alloc_words(), cmask_nr_words(400));
  EXPECT_EQ(seen->to_cidlist(), "100,250-260,399");
  EXPECT_TRUE(user_view(arena, b->offset, cmask_bytes(64))->to_cidlist().empty());
  EXPECT_FALSE(alloc_arena_cmask(arena, *pool, 0, 10, 5));
  EXPECT_EQ(pool->stats().allocations, 2u);  // the refused one took nothing
  ASSERT_TRUE(pool->free(a->offset));
  ASSERT_TRUE(pool->free(b->offset));
  EXPECT_TRUE(pool->check());
}

TEST(SetCmaskScratch, OnePerPossibleCpuFromEnableToDisable) {
  // 2 nodes x 2 LLCs x 4 cores x 2 threads, x86 order, two CPUs offline.
  const CidTable table = machine({.nodes = 2,
                                  .llcs_per_node = 2,
                                  .cores_per_llc = 4,
                                  .threads_per_core = 2,
                                  .smt_split = true,
                                  .offline = {3, 20}});
  Arena arena = make_arena(64);
  auto pool = Pool::create(arena);
  ASSERT_TRUE(pool);
  {
    auto scratch = SetCmaskScratch::create(arena, *pool, table);
    ASSERT_TRUE(scratch) << scratch.error().message;
    EXPECT_EQ(pool->stats().allocations, 32u);
    std::vector<std::uint32_t> offsets;
    for (std::uint32_t cpu = 0; cpu < 32; ++cpu) {
      auto off = scratch->offset(cpu);
      ASSERT_TRUE(off) << off.error().message;
      offsets.push_back(*off);
      // The kernel's scratch: scx_cmask_init(m, 0, num_possible_cpus()).
      auto m = user_view(arena, *off, cmask_bytes(32));
      ASSERT_TRUE(m) << m.error().message;
      EXPECT_EQ(m->base(), 0u);
      EXPECT_EQ(m->nr_cids(), 32u);
      EXPECT_EQ(m->alloc_words(), cmask_nr_words(32));
      EXPECT_EQ(m->weight(), 0u);
    }
    std::sort(offsets.begin(), offsets.end());
    for (std::size_t i = 1; i < offsets.size(); ++i) {
      EXPECT_GE(offsets[i] - offsets[i - 1], cmask_bytes(32)) << "scratch cmasks overlap";
    }
    EXPECT_FALSE(scratch->offset(32));
    scratch->release();  // disable
    EXPECT_EQ(pool->stats().allocations, 0u);
    EXPECT_FALSE(scratch->build(0, cpus_of({0})));
    scratch->release();  // twice: harmless
  }
  {
    auto scratch = SetCmaskScratch::create(arena, *pool, table);
    ASSERT_TRUE(scratch);
    EXPECT_EQ(pool->stats().allocations, 32u);
  }  // the destructor disables too
  EXPECT_EQ(pool->stats().allocations, 0u);
  EXPECT_TRUE(pool->check());
}

TEST(SetCmaskScratch, BuildHandsBpfTheArenaAddressOfThisCpusScratch) {
  const CidTable table = machine({.nodes = 1,
                                  .llcs_per_node = 1,
                                  .cores_per_llc = 4,
                                  .threads_per_core = 2,
                                  .smt_split = true});
  Arena arena = make_arena(16);
  auto pool = Pool::create(arena);
  ASSERT_TRUE(pool);
  auto scratch = SetCmaskScratch::create(arena, *pool, table);
  ASSERT_TRUE(scratch);
  const cpu_set_t affinity = cpus_of({1, 5, 6});
  auto addr = scratch->build(3, affinity);
  ASSERT_TRUE(addr) << addr.error().message;
  EXPECT_EQ(*addr, *scratch->offset(3));  // the bare offset, as the 7.3 kernel passes it
  auto m = user_view(arena, *scratch->offset(3), cmask_bytes(8));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->to_cidlist(), "2-3,5");  // cid order 0,4,1,5,2,6,3,7: CPUs 1,5 -> 2,3; 6 -> 5
  auto back = m->to_cpu_set(table);
  ASSERT_TRUE(back);
  EXPECT_TRUE(CPU_EQUAL(&*back, &affinity));
  // A rebuild replaces the set; other CPUs' scratch is untouched.
  ASSERT_TRUE(scratch->build(3, cpus_of({0})));
  EXPECT_EQ(m->to_cidlist(), "0");
  EXPECT_EQ(user_view(arena, *scratch->offset(2), cmask_bytes(8))->weight(), 0u);
  EXPECT_FALSE(scratch->build(3, cpus_of({8})));  // not a CPU of this machine
  EXPECT_EQ(m->to_cidlist(), "0");
  EXPECT_FALSE(scratch->build(9, cpus_of({0})));
}

TEST(SetCmaskScratch, ASecondProcessDecodesTheScratchThroughItsOwnMapping) {
  const CidTable table = machine({.nodes = 2,
                                  .llcs_per_node = 1,
                                  .cores_per_llc = 2,
                                  .threads_per_core = 2,
                                  .smt_split = true});
  const std::string name = "scxkit-cmask-test-" + std::to_string(getpid());
  Arena arena = make_arena(16, name);
  auto pool = Pool::create(arena);
  ASSERT_TRUE(pool);
  auto scratch = SetCmaskScratch::create(arena, *pool, table);
  ASSERT_TRUE(scratch);
  auto addr = scratch->build(1, cpus_of({0, 4, 7}));  // cids 0, 1, 7
  ASSERT_TRUE(addr);
  cmask_testing::TempDir dir;
  const auto out = dir.path() / "peer.out";
  ASSERT_EQ(cmask_testing::run_program({SCXKIT_CMASK_PEER, name, fmt::format("{:x}", *addr)}, out),
            0)
      << slurp(out);
  EXPECT_EQ(slurp(out), "0-1,7\n");
}

TEST(SetCmaskScratch, AnArenaTooSmallFailsEnableAndKeepsNothing) {
  Arena arena = make_arena(4);
  auto pool = Pool::create(arena, {.min_grow_pages = 1});
  ASSERT_TRUE(pool);
  // 1024 CPUs: 1024 scratch cmasks of cmask_bytes(1024) = 152 bytes, 38 pages.
  const CidTable big =
      machine({.nodes = 4, .llcs_per_node = 4, .cores_per_llc = 32, .threads_per_core = 2});
  auto scratch = SetCmaskScratch::create(arena, *pool, big);
  ASSERT_FALSE(scratch);
  EXPECT_EQ(scratch.error().code, Errc::no_space) << scratch.error().message;
  EXPECT_NE(scratch.error().message.find("set_cmask scratch for CPU"), std::string::npos);
  EXPECT_EQ(pool->stats().allocations, 0u);
  // What was allocated went back: a machine that fits still gets its scratch.
  EXPECT_TRUE(SetCmaskScratch::create(arena, *pool, machine({.cores_per_llc = 8})));
}

}  // namespace
}  // namespace scxkit
