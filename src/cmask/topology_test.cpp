// Reading the topology from sysfs: fake trees with the kernel's file layout,
// and the host's own.
#include <fstream>

#include <gtest/gtest.h>

#include "cmask/test_support.hpp"
#include "scxkit/topo.hpp"

namespace scxkit {
namespace {

namespace fs = std::filesystem;
using List = std::vector<std::uint32_t>;

// A sysfs tree under a temporary directory.
class FakeSysfs {
 public:
  void write(const fs::path& rel, std::string_view text) {
    const fs::path p = dir_.path() / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void link_node(std::uint32_t cpu, std::uint32_t node) {
    const fs::path cpu_dir = dir_.path() / "cpu" / ("cpu" + std::to_string(cpu));
    fs::create_directories(cpu_dir);
    fs::create_directory_symlink(dir_.path() / "node" / ("node" + std::to_string(node)),
                                 cpu_dir / ("node" + std::to_string(node)));
  }
  // An online CPU with SMT siblings and cache leaves index0..index<llc_leaf>.
  void online_cpu(std::uint32_t cpu, std::string_view siblings, std::string_view llc, int package) {
    const std::string c = "cpu/cpu" + std::to_string(cpu);
    write(c + "/topology/thread_siblings_list", std::string(siblings) + "\n");
    write(c + "/topology/physical_package_id", std::to_string(package) + "\n");
    write(c + "/cache/index0/shared_cpu_list", std::to_string(cpu) + "\n");
    write(c + "/cache/index1/shared_cpu_list", std::string(siblings) + "\n");
    write(c + "/cache/index3/shared_cpu_list", std::string(llc) + "\n");
  }
  const fs::path& root() const { return dir_.path(); }

 private:
  cmask_testing::TempDir dir_;
};

// Two packages = two nodes, two SMT cores each, CPU 7 offline, x86 order
// (siblings 0/4, 1/5, 2/6, 3/7).
void write_two_socket_machine(FakeSysfs& fs) {
  fs.write("cpu/possible", "0-7\n");
  fs.write("cpu/online", "0-6\n");
  fs.write("node/node0/cpulist", "0-1,4-5\n");
  fs.write("node/node1/cpulist", "2-3,6\n");
  for (std::uint32_t cpu = 0; cpu < 8; ++cpu) fs.link_node(cpu, cpu % 4 < 2 ? 0 : 1);
  fs.online_cpu(0, "0,4", "0-1,4-5", 0);
  fs.online_cpu(1, "1,5", "0-1,4-5", 0);
  fs.online_cpu(4, "0,4", "0-1,4-5", 0);
  fs.online_cpu(5, "1,5", "0-1,4-5", 0);
  fs.online_cpu(2, "2,6", "2-3,6", 1);
  fs.online_cpu(3, "3", "2-3,6", 1);  // sibling 7 is offline
  fs.online_cpu(6, "2,6", "2-3,6", 1);
}

TEST(HostTopology, ReadsNodesLlcsSiblingsAndPackagesFromSysfs) {
  FakeSysfs fs;
  write_two_socket_machine(fs);
  auto m = read_host_topology(fs.root());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->nr_cpu_ids, 8u);
  EXPECT_EQ(m->possible, (List{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(m->online, (List{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(m->node_cpus.at(1), (List{2, 3, 6}));
  EXPECT_EQ(m->cpus[6].node, 1);
  EXPECT_EQ(m->cpus[6].package, 1);
  EXPECT_EQ(m->cpus[6].siblings, (List{2, 6}));
  EXPECT_EQ(m->cpus[6].llc, (List{2, 3, 6}));  // the last leaf, index3
  EXPECT_TRUE(m->cpus[7].llc.empty());         // offline: no cacheinfo

  auto t = CidTable::build(*m);
  ASSERT_TRUE(t) << t.error().message;
  std::vector<std::uint32_t> order;
  for (std::uint32_t cid = 0; cid < t->nr_cids(); ++cid) order.push_back(*t->cid_to_cpu(cid));
  EXPECT_EQ(order, (List{0, 4, 1, 5, 2, 6, 3, 7}));
  EXPECT_EQ(*t->topo(6), (CidTopo{.core_cid = 6,
                                  .core_idx = 3,
                                  .llc_cid = 4,
                                  .llc_idx = 1,
                                  .node_cid = 4,
                                  .node_idx = 1,
                                  .shard_cid = 4,
                                  .shard_idx = 1}));
  EXPECT_EQ(*t->topo(7), (CidTopo{.shard_cid = 7, .shard_idx = 2}));
}

TEST(HostTopology, WithoutCacheinfoTheLlcIsTheNode) {
  FakeSysfs fs;
  write_two_socket_machine(fs);
  fs::remove_all(fs.root() / "cpu" / "cpu2" / "cache");
  auto m = read_host_topology(fs.root());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_TRUE(m->cpus[2].llc.empty());
  auto t = CidTable::build(*m);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->llc_fallback_cpus(), List{2});
}

TEST(HostTopology, WithoutNumaEveryCpuIsOnNodeZero) {
  FakeSysfs fs;
  fs.write("cpu/possible", "0-3\n");
  fs.write("cpu/online", "0-3\n");
  for (std::uint32_t cpu = 0; cpu < 4; ++cpu) fs.online_cpu(cpu, std::to_string(cpu), "0-3", 0);
  auto m = read_host_topology(fs.root());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->node_cpus.at(0), (List{0, 1, 2, 3}));
  for (const auto& c : m->cpus) EXPECT_EQ(c.node, 0);
  EXPECT_TRUE(CidTable::build(*m));
}

TEST(HostTopology, SaysWhichFileIsMissingOrMalformed) {
  FakeSysfs fs;
  auto m = read_host_topology(fs.root());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("cpu/possible"), std::string::npos) << m.error().message;
  fs.write("cpu/possible", "0-3\n");
  fs.write("cpu/online", "0-x\n");
  m = read_host_topology(fs.root());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("cpu/online"), std::string::npos) << m.error().message;
}

TEST(HostTopology, TheHostsTableCoversEveryPossibleCpu) {
  auto m = read_host_topology();
  if (!m) GTEST_SKIP() << "no readable sysfs CPU topology here: " << m.error().message;
  auto t = CidTable::build(*m);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->nr_cids(), m->possible.size());
  // Online CPUs get the topology cids, ahead of the offline tail.
  for (std::uint32_t cpu : m->online) {
    const std::uint32_t cid = *t->cpu_to_cid(cpu);
    EXPECT_LT(cid, m->online.size());
    EXPECT_EQ(*t->cid_to_cpu(cid), cpu);
    EXPECT_GE(t->topo(cid)->core_idx, 0);
  }
}

}  // namespace
}  // namespace scxkit
