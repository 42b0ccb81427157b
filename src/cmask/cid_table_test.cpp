// cid numbering against the kernel's rules (kernel/sched/ext/cid.c).
#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "scxkit/topo.hpp"

namespace scxkit {
namespace {

using List = std::vector<std::uint32_t>;

CidTable table_of(const TopologySpec& spec) {
  auto m = describe_topology(spec);
  EXPECT_TRUE(m) << m.error().message;
  auto t = CidTable::build(*m);
  EXPECT_TRUE(t) << t.error().message;
  return *t;
}

List cpus_in_cid_order(const CidTable& t) {
  List out;
  for (std::uint32_t cid = 0; cid < t.nr_cids(); ++cid) out.push_back(*t.cid_to_cpu(cid));
  return out;
}

TEST(CidTable, QemuOrderNumbersCidsLikeCpus) {
  const CidTable t =
      table_of({.nodes = 2, .llcs_per_node = 2, .cores_per_llc = 2, .threads_per_core = 2});
  ASSERT_EQ(t.nr_cids(), 16u);
  for (std::uint32_t cpu = 0; cpu < 16; ++cpu) EXPECT_EQ(*t.cpu_to_cid(cpu), cpu);
  // cid 13: node 1 (cids 8-15), its second LLC (cids 12-15), core 6 (cids 12-13);
  // 4 CPUs fit one default shard, so the shard is the LLC.
  EXPECT_EQ(*t.topo(13), (CidTopo{.core_cid = 12,
                                  .core_idx = 6,
                                  .llc_cid = 12,
                                  .llc_idx = 3,
                                  .node_cid = 8,
                                  .node_idx = 1,
                                  .shard_cid = 12,
                                  .shard_idx = 3}));
  EXPECT_EQ(t.nr_shards(), 4u);
}

TEST(CidTable, SiblingsFarApartBecomeNeighbours) {
  // x86 firmware order: CPUs 0-7 are first threads, 8-15 their siblings.
  const CidTable t = table_of({.nodes = 2,
                               .llcs_per_node = 2,
                               .cores_per_llc = 2,
                               .threads_per_core = 2,
                               .smt_split = true});
  EXPECT_EQ(cpus_in_cid_order(t), (List{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15}));
  EXPECT_EQ(*t.topo(*t.cpu_to_cid(9)), (CidTopo{.core_cid = 2,
                                                .core_idx = 1,
                                                .llc_cid = 0,
                                                .llc_idx = 0,
                                                .node_cid = 0,
                                                .node_idx = 0,
                                                .shard_cid = 0,
                                                .shard_idx = 0}));
}

TEST(CidTable, OfflineCpusFormATailWithoutTopology) {
  const CidTable t = table_of({.nodes = 1,
                               .llcs_per_node = 1,
                               .cores_per_llc = 4,
                               .threads_per_core = 1,
                               .offline = {1, 2}});
  EXPECT_EQ(cpus_in_cid_order(t), (List{0, 3, 1, 2}));
  EXPECT_EQ(t.topo(1)->core_idx, 1);  // cores are counted over online CPUs only
  // The tail has no core, LLC or node, but a shard of its own.
  EXPECT_EQ(*t.topo(2), (CidTopo{.shard_cid = 2, .shard_idx = 1}));
  EXPECT_EQ(*t.topo(3), (CidTopo{.shard_cid = 2, .shard_idx = 1}));
  EXPECT_EQ(t.nr_shards(), 2u);
  EXPECT_TRUE(t.online_without_topology().empty());
}

TEST(CidTable, AnOfflineSiblingLeavesItsCoreSmaller) {
  const CidTable t = table_of(
      {.nodes = 1, .llcs_per_node = 1, .cores_per_llc = 2, .threads_per_core = 2, .offline = {0}});
  EXPECT_EQ(cpus_in_cid_order(t), (List{1, 2, 3, 0}));
  EXPECT_EQ(t.topo(0)->core_idx, 0);
  EXPECT_EQ(t.topo(1)->core_idx, 1);
  EXPECT_EQ(t.topo(1)->core_cid, 1);
}

CidTable table_of(const TopologySpec& spec, std::uint32_t shard_size) {
  auto m = describe_topology(spec);
  EXPECT_TRUE(m) << m.error().message;
  auto t = CidTable::build(*m, shard_size);
  EXPECT_TRUE(t) << t.error().message;
  return *t;
}

// The first cid of each cid's shard, in cid order.
List shard_cids(const CidTable& t) {
  List out;
  for (std::uint32_t cid = 0; cid < t.nr_cids(); ++cid) {
    out.push_back(static_cast<std::uint32_t>(t.topo(cid)->shard_cid));
  }
  return out;
}

TEST(CidShards, AnLlcIsCutIntoEvenShardsOfWholeCores) {
  // 16 CPUs with shard size 6: 3 shards, 8 cores spread 3, 3, 2.
  const CidTable t =
      table_of({.nodes = 1, .llcs_per_node = 1, .cores_per_llc = 8, .threads_per_core = 2}, 6);
  EXPECT_EQ(shard_cids(t), (List{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 12, 12, 12, 12}));
  EXPECT_EQ(t.topo(12)->shard_idx, 2);
  EXPECT_EQ(t.nr_shards(), 3u);
}

TEST(CidShards, AShardEndsBeforeACoreWouldOverfillIt) {
  // CPU 5 offline leaves cores of 2, 2 and 1 CPUs. Shard size 3: the layout
  // plans 2 shards (2 cores, then 1), but the second core would make 4 cids,
  // so it starts a shard; the tail (CPU 5) gets one more.
  const CidTable t = table_of(
      {.nodes = 1, .llcs_per_node = 1, .cores_per_llc = 3, .threads_per_core = 2, .offline = {5}},
      3);
  EXPECT_EQ(shard_cids(t), (List{0, 0, 2, 2, 4, 5}));
  EXPECT_EQ(t.topo(5)->shard_idx, 3);
  EXPECT_EQ(t.nr_shards(), 4u);
}

TEST(CidShards, ACoreWiderThanTheShardSizeStillGetsAShard) {
  const CidTable t =
      table_of({.nodes = 1, .llcs_per_node = 1, .cores_per_llc = 2, .threads_per_core = 2}, 1);
  EXPECT_EQ(shard_cids(t), (List{0, 0, 2, 2}));
  EXPECT_EQ(t.nr_shards(), 2u);
}

TEST(CidShards, ShardsHoldAtMost512CpusAndDefaultTo24) {
  const TopologySpec spec{
      .nodes = 1, .llcs_per_node = 1, .cores_per_llc = 1024, .threads_per_core = 1};
  const CidTable big = table_of(spec, 1000);
  EXPECT_EQ(big.topo(511)->shard_cid, 0);
  EXPECT_EQ(big.topo(512)->shard_cid, 512);
  EXPECT_EQ(big.nr_shards(), 2u);
  // Default 24: 43 shards for 1024 cores, the first 35 with 24, the last 8 with 23.
  const CidTable dfl = table_of(spec, 0);
  EXPECT_EQ(dfl.nr_shards(), 43u);
  EXPECT_EQ(dfl.topo(839)->shard_idx, 34);
  EXPECT_EQ(dfl.topo(840)->shard_cid, 840);
  EXPECT_EQ(dfl.topo(840)->shard_idx, 35);
  EXPECT_EQ(dfl.topo(1023)->shard_cid, 1001);
  EXPECT_EQ(*table_of(spec, kCidShardSizeDefault).topo(840), *dfl.topo(840));
}

TEST(CidShards, TheTailIsPackedIntoShardsOfTheShardSize) {
  const CidTable t = table_of({.nodes = 1,
                               .llcs_per_node = 1,
                               .cores_per_llc = 8,
                               .threads_per_core = 1,
                               .offline = {3, 4, 5, 6, 7}},
                              2);
  EXPECT_EQ(shard_cids(t), (List{0, 0, 2, 3, 3, 5, 5, 7}));
  EXPECT_EQ(t.topo(7)->shard_idx, 4);
  EXPECT_EQ(t.nr_shards(), 5u);
}

// A hand-made machine for what described machines cannot express.
MachineTopology two_node_machine() {
  MachineTopology m;
  m.nr_cpu_ids = 4;
  m.possible = m.online = {0, 1, 2, 3};
  m.cpus.resize(4);
  for (std::uint32_t cpu = 0; cpu < 4; ++cpu) {
    m.cpus[cpu].node = cpu % 2;  // nodes interleave: 0,2 on node 0; 1,3 on node 1
    m.cpus[cpu].llc = {0, 1, 2, 3};
    m.cpus[cpu].siblings = {cpu};
  }
  m.node_cpus[0] = {0, 2};
  m.node_cpus[1] = {1, 3};
  return m;
}

TEST(CidTable, AnLlcStraddlingTwoNodesBecomesTwoLlcUnits) {
  auto t = CidTable::build(two_node_machine());
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(cpus_in_cid_order(*t), (List{0, 2, 1, 3}));
  EXPECT_EQ(t->topo(2)->llc_idx, 1);
  EXPECT_EQ(t->topo(2)->llc_cid, 2);
  EXPECT_EQ(t->topo(2)->node_idx, 1);
}

TEST(CidTable, CpusWithoutCacheinfoUseTheirNodeAsLlc) {
  MachineTopology m = two_node_machine();
  m.cpus[1].llc.clear();
  m.cpus[3].llc = {3};
  auto t = CidTable::build(m);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->llc_fallback_cpus(), List{1});
  // Node 1's LLC is the node {1,3}: one LLC unit, not two.
  EXPECT_EQ(t->topo(3)->llc_cid, 2);
}

TEST(CidTable, OnlineCpusWithoutNumaNodeGoToTheTail) {
  MachineTopology m = two_node_machine();
  m.cpus[2].node = -1;
  m.node_cpus[0] = {0};
  auto t = CidTable::build(m);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(cpus_in_cid_order(*t), (List{0, 1, 3, 2}));
  EXPECT_EQ(*t->topo(3), (CidTopo{.shard_cid = 3, .shard_idx = 2}));
  EXPECT_EQ(t->online_without_topology(), List{2});
}

TEST(CidTable, HolesInThePossibleSetHaveNoCid) {
  MachineTopology m;
  m.nr_cpu_ids = 6;
  m.possible = {0, 1, 4, 5};
  m.online = {0, 4, 5};
  m.cpus.resize(6);
  for (std::uint32_t cpu : m.possible) {
    m.cpus[cpu] = {.node = 0, .llc = {0, 1, 4, 5}, .siblings = {cpu}};
  }
  m.node_cpus[0] = m.possible;
  auto t = CidTable::build(m);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->nr_cids(), 4u);
  EXPECT_EQ(t->nr_cpu_ids(), 6u);
  EXPECT_EQ(cpus_in_cid_order(*t), (List{0, 4, 5, 1}));
  auto hole = t->cpu_to_cid(2);
  ASSERT_FALSE(hole);
  EXPECT_EQ(hole.error().code, Errc::out_of_range);
  EXPECT_FALSE(t->cpu_to_cid(6));
  EXPECT_FALSE(t->cid_to_cpu(4));
  EXPECT_FALSE(t->topo(4));
}

TEST(CidTable, FailsLikeTheKernelWhenACpuIsMissingFromItsOwnSets) {
  MachineTopology m = two_node_machine();
  m.cpus[2].siblings = {0};  // CPU 2's core does not contain CPU 2
  auto t = CidTable::build(m);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("CPU 2 is not in its own core"), std::string::npos)
      << t.error().message;

  m = two_node_machine();
  m.cpus[1].llc = {0, 2};
  t = CidTable::build(m);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("CPU 1 is not in its own LLC"), std::string::npos);
}

TEST(CidTable, RejectsInconsistentInput) {
  MachineTopology m = two_node_machine();
  m.online.push_back(7);
  EXPECT_FALSE(CidTable::build(m));
  m = two_node_machine();
  m.cpus[0].llc.push_back(9);
  auto t = CidTable::build(m);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("CPU 0's LLC names CPU 9"), std::string::npos);
}

// The structural promises of the kernel's numbering, on every described
// machine of 1 to 512 CPUs with both CPU orders and some CPUs offline.
TEST(CidTable, EveryDescribedMachineUpTo512CpusKeepsTheKernelsPromises) {
  int machines = 0;
  for (std::uint32_t nodes : {1u, 2u, 4u}) {
    for (std::uint32_t llcs : {1u, 2u, 4u}) {
      for (std::uint32_t cores : {1u, 3u, 8u, 16u}) {
        for (std::uint32_t threads : {1u, 2u, 4u}) {
          const std::uint32_t total = nodes * llcs * cores * threads;
          if (total > 512) continue;
          for (bool split : {false, true}) {
            TopologySpec spec{.nodes = nodes,
                              .llcs_per_node = llcs,
                              .cores_per_llc = cores,
                              .threads_per_core = threads,
                              .smt_split = split};
            for (std::uint32_t cpu = 1; cpu < total; cpu += 7) spec.offline.push_back(cpu);
            auto m = describe_topology(spec);
            ASSERT_TRUE(m);
            auto t = CidTable::build(*m);
            ASSERT_TRUE(t) << t.error().message;
            ++machines;
            ASSERT_EQ(t->nr_cids(), total);
            const std::uint32_t online = static_cast<std::uint32_t>(m->online.size());
            const std::uint32_t nr_cores = total / threads;
            const auto llc_of = [&](std::uint32_t cpu) {
              return (split ? cpu % nr_cores : cpu / threads) / cores;
            };
            // Nodes are walked in order of their lowest online CPU, LLCs
            // within their node likewise.
            std::map<std::uint32_t, std::uint32_t> llc_first, node_first;  // unit -> lowest CPU
            for (std::uint32_t cpu : m->online) {
              llc_first.try_emplace(llc_of(cpu), cpu);
              node_first.try_emplace(llc_of(cpu) / llcs, cpu);
            }
            const auto llc_key = [&](std::uint32_t llc) {
              return std::pair(node_first.at(llc / llcs), llc_first.at(llc));
            };
            const auto llc_rank = [&](std::uint32_t llc) {
              return static_cast<std::int32_t>(
                  std::count_if(llc_first.begin(), llc_first.end(),
                                [&](const auto& u) { return llc_key(u.first) < llc_key(llc); }));
            };
            const auto node_rank = [&](std::uint32_t node) {
              return static_cast<std::int32_t>(
                  std::count_if(node_first.begin(), node_first.end(),
                                [&](const auto& u) { return u.second < node_first.at(node); }));
            };
            std::set<std::uint32_t> seen;
            for (std::uint32_t cid = 0; cid < total; ++cid) {
              const std::uint32_t cpu = *t->cid_to_cpu(cid);
              ASSERT_EQ(*t->cpu_to_cid(cpu), cid);
              seen.insert(cpu);
              const CidTopo topo = *t->topo(cid);
              if (cid >= online) {
                ASSERT_EQ(topo, (CidTopo{.shard_cid = topo.shard_cid, .shard_idx = topo.shard_idx}))
                    << "offline tail";
                ASSERT_GE(topo.shard_cid, static_cast<std::int32_t>(online));
                continue;
              }
              // One default shard per LLC unit: at most 4 * 16 = 64 CPUs an
              // LLC here, so a unit of n CPUs has ceil(n / 24) shards.
              ASSERT_LE(topo.llc_cid, topo.shard_cid);
              ASSERT_LE(topo.shard_cid, static_cast<std::int32_t>(cid));
              ASSERT_GE(topo.shard_idx, topo.llc_idx);
              ASSERT_FALSE(std::binary_search(spec.offline.begin(), spec.offline.end(), cpu));
              // Units are contiguous and start at their first cid.
              ASSERT_LE(topo.node_cid, topo.llc_cid);
              ASSERT_LE(topo.llc_cid, topo.core_cid);
              ASSERT_LE(topo.core_cid, static_cast<std::int32_t>(cid));
              if (cid > 0 && t->topo(cid - 1)->core_idx == topo.core_idx) {
                ASSERT_EQ(t->topo(cid - 1)->core_cid, topo.core_cid);
              } else {
                // A new core starts here, with the next index.
                ASSERT_EQ(topo.core_cid, static_cast<std::int32_t>(cid));
                ASSERT_EQ(topo.core_idx, cid == 0 ? 0 : t->topo(cid - 1)->core_idx + 1);
              }
              // LLC and node indices count the units that have online CPUs, in order.
              ASSERT_EQ(topo.llc_idx, llc_rank(llc_of(cpu)))
                  << nodes << ',' << llcs << ',' << cores << ',' << threads << " split " << split
                  << " cpu " << cpu;
              ASSERT_EQ(topo.node_idx, node_rank(llc_of(cpu) / llcs));
              // SMT siblings share the core.
              for (std::uint32_t sib : m->cpus[cpu].siblings) {
                if (std::binary_search(m->online.begin(), m->online.end(), sib)) {
                  ASSERT_EQ(t->topo(*t->cpu_to_cid(sib))->core_idx, topo.core_idx);
                }
              }
            }
            ASSERT_EQ(seen.size(), total);
          }
        }
      }
    }
  }
  EXPECT_GT(machines, 100);
}

TEST(TopologySpec, ParsesFourCounts) {
  auto s = parse_topology_spec("2,3,4,2");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->nodes, 2u);
  EXPECT_EQ(s->llcs_per_node, 3u);
  EXPECT_EQ(s->cores_per_llc, 4u);
  EXPECT_EQ(s->threads_per_core, 2u);
}

TEST(TopologySpec, RejectsOtherShapesWithAnExample) {
  for (const char* bad : {"", "1,2,3", "1,2,3,4,5", "1,0,1,1", "a,1,1,1", "1,,1,1", "-1,1,1,1"}) {
    auto s = parse_topology_spec(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("write N,L,C,T"), std::string::npos) << s.error().message;
  }
}

TEST(TopologySpec, DescribedMachinesAreCappedAt8192Cpus) {
  EXPECT_TRUE(describe_topology(
      {.nodes = 8, .llcs_per_node = 4, .cores_per_llc = 128, .threads_per_core = 2}));
  auto big = describe_topology(
      {.nodes = 8, .llcs_per_node = 4, .cores_per_llc = 128, .threads_per_core = 3});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::out_of_range);
  EXPECT_FALSE(describe_topology({.nodes = UINT32_MAX,
                                  .llcs_per_node = UINT32_MAX,
                                  .cores_per_llc = UINT32_MAX,
                                  .threads_per_core = UINT32_MAX}));
  auto off = describe_topology({.cores_per_llc = 2, .offline = {2}});
  ASSERT_FALSE(off);
  EXPECT_NE(off.error().message.find("offline CPU 2 does not exist"), std::string::npos);
}

}  // namespace
}  // namespace scxkit
