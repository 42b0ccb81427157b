// Topological CPU ids (cids), numbered exactly as the sched_ext kernel does
// (kernel/sched/ext/cid.c, scx_cid_init(), 2026 cid series).
//
// The kernel walks the CPUs that are online when the root scheduler is
// enabled: NUMA node by node (in order of each node's lowest remaining CPU),
// within a node LLC by LLC, within an LLC core by core (SMT siblings), within
// a core CPU by CPU, ascending, handing out dense cids 0, 1, 2, ... Each level
// is an intersection with what is left of its parent, so an LLC that straddles
// two nodes becomes two LLC units. Possible CPUs that got no cid (normally the
// offline ones, and online CPUs without a NUMA node) follow as a tail with
// core, LLC and node fields -1. The LLC of a CPU is the last cacheinfo leaf's shared CPU
// set; a CPU without cacheinfo uses its node's CPUs instead.
//
// Every cid also belongs to a shard, a run of whole cores inside one LLC unit.
// With S the scheduler's ops.cid_shard_size (24 by default), an LLC unit of N
// CPUs is cut into max(ceil(N / S), ceil(N / 512)) shards, its cores spread
// evenly over them (the first shards take one core more); a shard also ends
// early when the next core would take it past min(S, 512) cids. The
// no-topology tail is packed into shards of min(S, 512) cids.
//
// A MachineTopology holds what that walk reads; it comes from the host's sysfs
// or from a described machine (nodes x LLCs x cores x threads), so tests can
// number 1- to 8192-CPU machines on a small host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit {

// What the kernel's cid walk reads about one machine. CPU sets are ascending
// lists of CPU numbers.
struct MachineTopology {
  struct Cpu {
    std::int32_t node = -1;               // cpu_to_node(); -1: no NUMA information
    std::int32_t package = -1;            // physical_package_id; shown, not used for numbering
    std::vector<std::uint32_t> llc;       // last cache leaf's shared_cpu_list; empty: no cacheinfo
    std::vector<std::uint32_t> siblings;  // SMT siblings including the CPU (thread_siblings_list)
  };
  std::uint32_t nr_cpu_ids = 0;         // highest possible CPU + 1
  std::vector<std::uint32_t> possible;  // cpu_possible_mask
  std::vector<std::uint32_t> online;    // cpu_online_mask, a subset of possible
  std::vector<Cpu> cpus;                // indexed by CPU number, nr_cpu_ids entries
  std::map<std::int32_t, std::vector<std::uint32_t>> node_cpus;  // cpumask_of_node()
};

// Reads the topology under `sysfs` (normally /sys/devices/system): cpu/possible,
// cpu/online, cpuN/nodeM links (or node/nodeM/cpulist), cpuN/topology and
// cpuN/cache/index*. A kernel without NUMA (no node directories) puts every CPU
// on node 0, as cpu_to_node() does there.
Result<MachineTopology> read_host_topology(
    const std::filesystem::path& sysfs = "/sys/devices/system");

// A described machine. CPUs are numbered node by node, LLC by LLC, core by
// core; threads of a core get consecutive numbers (QEMU's order) unless
// `smt_split`, which numbers every core's first thread before any second
// thread (the usual x86 firmware order, siblings far apart).
struct TopologySpec {
  std::uint32_t nodes = 1;
  std::uint32_t llcs_per_node = 1;
  std::uint32_t cores_per_llc = 1;
  std::uint32_t threads_per_core = 1;
  bool smt_split = false;
  std::vector<std::uint32_t> offline;  // possible CPUs that are not online
};

inline constexpr std::uint32_t kMaxDescribedCpus = 8192;   // the kernel's NR_CPUS cap for cids
inline constexpr std::uint32_t kCidShardSizeDefault = 24;  // SCX_CID_SHARD_SIZE_DFL
inline constexpr std::uint32_t kCidShardMaxCpus = 512;     // SCX_CID_SHARD_MAX_CPUS

// "N,L,C,T" (nodes, LLCs per node, cores per LLC, threads per core), each >= 1.
Result<TopologySpec> parse_topology_spec(std::string_view text);
// The machine a spec describes; at most kMaxDescribedCpus CPUs.
Result<MachineTopology> describe_topology(const TopologySpec& spec);

// struct scx_cid_topo (include/scxkit/bpf/cid_types.h), field for field.
struct CidTopo {
  std::int32_t core_cid = -1;  // first cid of the cid's core
  std::int32_t core_idx = -1;  // that core's index in walk order
  std::int32_t llc_cid = -1;
  std::int32_t llc_idx = -1;
  std::int32_t node_cid = -1;
  std::int32_t node_idx = -1;
  std::int32_t shard_cid = -1;  // set in the no-topology tail too
  std::int32_t shard_idx = -1;
  bool operator==(const CidTopo&) const = default;
};
static_assert(sizeof(CidTopo) == 32, "CidTopo mirrors struct scx_cid_topo");

// The cid <-> CPU mapping of one machine.
class CidTable {
 public:
  // Numbers `machine` as scx_cid_init() would for a scheduler whose
  // ops.cid_shard_size is `shard_size` (0: the kernel's default). Fails where
  // the kernel's walk fails (a CPU missing from its own node, LLC or sibling
  // set) and on inconsistent input (online CPUs that are not possible, bad set
  // members).
  static Result<CidTable> build(const MachineTopology& machine, std::uint32_t shard_size = 0);

  std::uint32_t nr_cids() const { return static_cast<std::uint32_t>(cid_to_cpu_.size()); }
  std::uint32_t nr_cpu_ids() const { return static_cast<std::uint32_t>(cpu_to_cid_.size()); }
  std::uint32_t nr_shards() const { return nr_shards_; }
  // Errors: cid >= nr_cids(); cpu not a possible CPU.
  Result<std::uint32_t> cid_to_cpu(std::uint32_t cid) const;
  Result<std::uint32_t> cpu_to_cid(std::uint32_t cpu) const;
  Result<CidTopo> topo(std::uint32_t cid) const;

  // CPUs the kernel would warn about: online without cacheinfo (LLC taken
  // from the node), and online but left in the no-topology tail.
  const std::vector<std::uint32_t>& llc_fallback_cpus() const { return llc_fallback_; }
  const std::vector<std::uint32_t>& online_without_topology() const { return online_no_topo_; }

 private:
  std::vector<std::uint32_t> cid_to_cpu_;
  std::vector<std::int32_t> cpu_to_cid_;  // -1 for holes in the possible set
  std::vector<CidTopo> topo_;
  std::vector<std::uint32_t> llc_fallback_;
  std::vector<std::uint32_t> online_no_topo_;
  std::uint32_t nr_shards_ = 0;
};

}  // namespace scxkit
