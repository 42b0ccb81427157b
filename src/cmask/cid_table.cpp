// cid numbering: scx_cid_init() of kernel/sched/ext/cid.c, step for step.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "scxkit/topo.hpp"

namespace scxkit {

namespace {

// A CPU set as the kernel's cpumask: one flag per CPU number.
using CpuBits = std::vector<bool>;

CpuBits to_bits(const std::vector<std::uint32_t>& cpus, std::uint32_t nr_cpu_ids) {
  CpuBits bits(nr_cpu_ids);
  for (std::uint32_t cpu : cpus) bits[cpu] = true;
  return bits;
}

std::optional<std::uint32_t> first_cpu(const CpuBits& bits) {
  const auto it = std::find(bits.begin(), bits.end(), true);
  if (it == bits.end()) return std::nullopt;
  return static_cast<std::uint32_t>(it - bits.begin());
}

// dst = a & b-as-list.
void and_list(CpuBits& dst, const CpuBits& a, const std::vector<std::uint32_t>& b) {
  std::fill(dst.begin(), dst.end(), false);
  for (std::uint32_t cpu : b) dst[cpu] = a[cpu];
}

Result<void> check_list(const std::vector<std::uint32_t>& list, std::uint32_t nr_cpu_ids,
                        std::string_view what) {
  for (std::uint32_t cpu : list) {
    if (cpu >= nr_cpu_ids) {
      return make_error(Errc::invalid_argument, fmt::format("{} names CPU {}, beyond nr_cpu_ids {}",
                                                            what, cpu, nr_cpu_ids));
    }
  }
  return {};
}

Result<void> check_machine(const MachineTopology& m) {
  if (m.cpus.size() != m.nr_cpu_ids) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("topology has {} CPU entries for nr_cpu_ids {}", m.cpus.size(), m.nr_cpu_ids));
  }
  if (auto r = check_list(m.possible, m.nr_cpu_ids, "the possible set"); !r) return r;
  if (auto r = check_list(m.online, m.nr_cpu_ids, "the online set"); !r) return r;
  const CpuBits possible = to_bits(m.possible, m.nr_cpu_ids);
  for (std::uint32_t cpu : m.online) {
    if (!possible[cpu]) {
      return make_error(Errc::invalid_argument,
                        fmt::format("CPU {} is online but not possible", cpu));
    }
  }
  for (const auto& [node, cpus] : m.node_cpus) {
    if (auto r = check_list(cpus, m.nr_cpu_ids, fmt::format("node {}", node)); !r) return r;
  }
  for (std::uint32_t cpu = 0; cpu < m.nr_cpu_ids; ++cpu) {
    const auto& c = m.cpus[cpu];
    if (auto r = check_list(c.llc, m.nr_cpu_ids, fmt::format("CPU {}'s LLC", cpu)); !r) return r;
    if (auto r = check_list(c.siblings, m.nr_cpu_ids, fmt::format("CPU {}'s siblings", cpu)); !r) {
      return r;
    }
  }
  return {};
}

// The kernel returns -EINVAL (with a WARN) when a level's mask misses the CPU it came from.
tl::unexpected<Error> walk_error(std::string_view level, std::uint32_t cpu) {
  return make_error(Errc::invalid_argument,
                    fmt::format("CPU {} is not in its own {} CPU set; the kernel's cid walk "
                                "fails the same way (-EINVAL)",
                                cpu, level));
}

// calc_shard_layout(): how many cores each shard of one LLC unit takes. The
// first `large` shards take `cores_per_shard + 1`.
struct ShardLayout {
  std::uint32_t cores_per_shard, large;
};
ShardLayout shard_layout(const MachineTopology& m, const CpuBits& llc_cpus,
                         std::uint32_t shard_size) {
  std::uint32_t cpus = 0, cores = 0;
  for (std::uint32_t cpu = 0; cpu < llc_cpus.size(); ++cpu) {
    if (!llc_cpus[cpu]) continue;
    ++cpus;
    // A core counts where its first SMT sibling (online or not in this unit) is.
    const auto& sib = m.cpus[cpu].siblings;
    if (!sib.empty() && *std::min_element(sib.begin(), sib.end()) == cpu) ++cores;
  }
  const auto div_round_up = [](std::uint32_t a, std::uint32_t b) { return (a + b - 1) / b; };
  const std::uint32_t shards =
      std::max({1u, div_round_up(cpus, shard_size), div_round_up(cpus, kCidShardMaxCpus)});
  return {cores / shards, cores % shards};
}

}  // namespace

Result<CidTable> CidTable::build(const MachineTopology& m, std::uint32_t shard_size) {
  if (shard_size == 0) shard_size = kCidShardSizeDefault;
  const std::uint32_t max_cids = std::min(shard_size, kCidShardMaxCpus);
  if (auto ok = check_machine(m); !ok) return tl::unexpected(ok.error());
  static const std::vector<std::uint32_t> kNoCpus;
  const auto node_list = [&](std::int32_t nid) -> const std::vector<std::uint32_t>& {
    const auto it = m.node_cpus.find(nid);
    return it == m.node_cpus.end() ? kNoCpus : it->second;
  };

  CidTable t;
  const std::uint32_t n = m.nr_cpu_ids;
  t.cid_to_cpu_.reserve(m.possible.size());
  t.topo_.reserve(m.possible.size());
  t.cpu_to_cid_.assign(n, -1);  // -1: holes in the possible set (0 is a valid cid)
  CpuBits to_walk = to_bits(m.online, n);
  CpuBits node_scratch(n), llc_scratch(n), core_scratch(n);
  std::int32_t next_node_idx = 0, next_llc_idx = 0, next_core_idx = 0, next_shard_idx = 0;
  const auto next_cid = [&] { return static_cast<std::int32_t>(t.cid_to_cpu_.size()); };

  while (auto next_cpu = first_cpu(to_walk)) {
    const std::int32_t nid = m.cpus[*next_cpu].node;
    const std::int32_t node_cid = next_cid();
    // No NUMA information: the tail gives this CPU a no-topology cid.
    if (nid < 0) {
      to_walk[*next_cpu] = false;
      continue;
    }
    const std::int32_t node_idx = next_node_idx++;
    and_list(node_scratch, to_walk, node_list(nid));
    if (!node_scratch[*next_cpu]) return walk_error("node's", *next_cpu);

    while (auto ncpu = first_cpu(node_scratch)) {
      // cpu_llc_mask(): the last cache leaf, else the node of this CPU.
      const auto& cpu = m.cpus[*ncpu];
      const bool fallback = cpu.llc.empty();
      if (fallback) t.llc_fallback_.push_back(*ncpu);
      const std::int32_t llc_cid = next_cid();
      const std::int32_t llc_idx = next_llc_idx++;
      and_list(llc_scratch, node_scratch, fallback ? node_list(cpu.node) : cpu.llc);
      if (!llc_scratch[*ncpu]) return walk_error("LLC", *ncpu);

      const ShardLayout layout = shard_layout(m, llc_scratch, shard_size);
      std::uint32_t shard_local = 0, cores_in_shard = 0, cids_in_shard = 0;
      std::int32_t shard_cid = next_cid(), shard_idx = next_shard_idx++;
      while (auto lcpu = first_cpu(llc_scratch)) {
        const std::int32_t core_cid = next_cid();
        const std::int32_t core_idx = next_core_idx++;
        and_list(core_scratch, llc_scratch, m.cpus[*lcpu].siblings);
        if (!core_scratch[*lcpu]) return walk_error("core (SMT sibling)", *lcpu);

        // A new shard when this one has its cores or this core would overfill
        // it; never an empty one (a core wider than max_cids gets a shard).
        const auto cids_in_core =
            static_cast<std::uint32_t>(std::count(core_scratch.begin(), core_scratch.end(), true));
        const std::uint32_t max_cores =
            layout.cores_per_shard + (shard_local < layout.large ? 1 : 0);
        if (cores_in_shard != 0 &&
            (cores_in_shard >= max_cores || cids_in_shard + cids_in_core > max_cids)) {
          ++shard_local;
          cores_in_shard = cids_in_shard = 0;
          shard_cid = next_cid();
          shard_idx = next_shard_idx++;
        }
        ++cores_in_shard;
        cids_in_shard += cids_in_core;

        for (std::uint32_t ccpu = 0; ccpu < n; ++ccpu) {
          if (!core_scratch[ccpu]) continue;
          t.cpu_to_cid_[ccpu] = next_cid();
          t.cid_to_cpu_.push_back(ccpu);
          t.topo_.push_back(CidTopo{.core_cid = core_cid,
                                    .core_idx = core_idx,
                                    .llc_cid = llc_cid,
                                    .llc_idx = llc_idx,
                                    .node_cid = node_cid,
                                    .node_idx = node_idx,
                                    .shard_cid = shard_cid,
                                    .shard_idx = shard_idx});
          llc_scratch[ccpu] = node_scratch[ccpu] = to_walk[ccpu] = false;
        }
      }
    }
  }

  // The no-topology tail: possible CPUs without a cid, normally the offline
  // ones, packed into shards of max_cids.
  const CpuBits online = to_bits(m.online, n);
  std::uint32_t tail_in_shard = max_cids;
  CidTopo tail;
  for (std::uint32_t cpu : m.possible) {
    if (t.cpu_to_cid_[cpu] != -1) continue;
    if (online[cpu]) t.online_no_topo_.push_back(cpu);
    if (tail_in_shard >= max_cids) {
      tail.shard_cid = next_cid();
      tail.shard_idx = next_shard_idx++;
      tail_in_shard = 0;
    }
    ++tail_in_shard;
    t.cpu_to_cid_[cpu] = next_cid();
    t.cid_to_cpu_.push_back(cpu);
    t.topo_.push_back(tail);
  }
  std::sort(t.llc_fallback_.begin(), t.llc_fallback_.end());
  t.nr_shards_ = static_cast<std::uint32_t>(next_shard_idx);
  return t;
}

Result<std::uint32_t> CidTable::cid_to_cpu(std::uint32_t cid) const {
  if (cid >= nr_cids()) {
    return make_error(
        Errc::out_of_range,
        fmt::format("cid {} does not exist: this machine has cids 0-{}", cid, nr_cids() - 1));
  }
  return cid_to_cpu_[cid];
}

Result<std::uint32_t> CidTable::cpu_to_cid(std::uint32_t cpu) const {
  if (cpu >= nr_cpu_ids() || cpu_to_cid_[cpu] < 0) {
    return make_error(Errc::out_of_range,
                      fmt::format("CPU {} is not a possible CPU of this machine", cpu));
  }
  return static_cast<std::uint32_t>(cpu_to_cid_[cpu]);
}

Result<CidTopo> CidTable::topo(std::uint32_t cid) const {
  if (auto cpu = cid_to_cpu(cid); !cpu) return tl::unexpected(cpu.error());
  return topo_[cid];
}

}  // namespace scxkit
