// The kernel's cid numbering against scxkit's CidTable, field by field.
#include <fmt/format.h>

#include <algorithm>

#include "cidq_checks.hpp"

namespace scx_cidq {

namespace {

std::string field(std::int32_t v) {
  return v < 0 ? "-" : std::to_string(v);
}

scxkit::CidTopo to_topo(const cidq_topo& t) {
  return {t.core_cid, t.core_idx, t.llc_cid,   t.llc_idx,
          t.node_cid, t.node_idx, t.shard_cid, t.shard_idx};
}

std::string describe(const scxkit::CidTopo& t) {
  return fmt::format("core {}/{} llc {}/{} node {}/{} shard {}/{} (first cid/index)", t.core_cid,
                     t.core_idx, t.llc_cid, t.llc_idx, t.node_cid, t.node_idx, t.shard_cid,
                     t.shard_idx);
}

}  // namespace

unsigned compare_cid_tables(const cidq_cid_table& k, const scxkit::CidTable& ours) {
  unsigned bad = 0;
  const auto mismatch = [&](const std::string& what) {
    fmt::print("scx_cidq: cid table MISMATCH: {}\n", what);
    ++bad;
  };
  if (k.ready == 0) {
    mismatch("ops.init did not record the kernel's table");
    return bad;
  }
  if (k.nr_cids != ours.nr_cids()) {
    mismatch(fmt::format("nr_cids: kernel {}, scxkit {}", k.nr_cids, ours.nr_cids()));
  }
  if (k.nr_cpu_ids != ours.nr_cpu_ids()) {
    mismatch(fmt::format("nr_cpu_ids: kernel {}, scxkit {}", k.nr_cpu_ids, ours.nr_cpu_ids()));
  }
  const std::uint32_t nr_cids = std::min<std::uint32_t>(k.nr_cids, CIDQ_MAX_CPUS);
  if (nr_cids < k.nr_cids) {
    mismatch(fmt::format("only the first {} of {} cids were recorded", nr_cids, k.nr_cids));
  }

  fmt::print("scx_cidq: the kernel's cid table ({} cids, nr_cpu_ids {}):\n", k.nr_cids,
             k.nr_cpu_ids);
  fmt::print("{:>5} {:>5} {:>5} {:>5} {:>5} {:>5}\n", "cid", "cpu", "node", "llc", "core", "shard");
  for (std::uint32_t cid = 0; cid < nr_cids; ++cid) {
    const scxkit::CidTopo kt = to_topo(k.topo[cid]);
    fmt::print("{:>5} {:>5} {:>5} {:>5} {:>5} {:>5}\n", cid, k.cid_to_cpu[cid], field(kt.node_idx),
               field(kt.llc_idx), field(kt.core_idx), field(kt.shard_idx));
    const auto cpu = ours.cid_to_cpu(cid);
    if (!cpu) {
      mismatch(fmt::format("cid {}: kernel CPU {}, scxkit: {}", cid, k.cid_to_cpu[cid],
                           cpu.error().message));
      continue;
    }
    if (static_cast<std::int64_t>(*cpu) != k.cid_to_cpu[cid]) {
      mismatch(fmt::format("cid {}: kernel CPU {}, scxkit CPU {}", cid, k.cid_to_cpu[cid], *cpu));
    }
    if (const scxkit::CidTopo ot = *ours.topo(cid); ot != kt) {
      mismatch(fmt::format("cid {}: kernel {}, scxkit {}", cid, describe(kt), describe(ot)));
    }
  }
  // cpu_to_cid, over every possible CPU scxkit knows (the kernel's entries
  // were filled from its own cid_to_cpu, so a CPU it lacks stays unset).
  for (std::uint32_t cpu = 0; cpu < std::min<std::uint32_t>(ours.nr_cpu_ids(), CIDQ_MAX_CPUS);
       ++cpu) {
    const auto cid = ours.cpu_to_cid(cpu);
    if (!cid) continue;  // not a possible CPU
    if (static_cast<std::int64_t>(*cid) != k.cpu_to_cid[cpu]) {
      mismatch(fmt::format("CPU {}: kernel cid {}, scxkit cid {}", cpu, k.cpu_to_cid[cpu], *cid));
    }
  }
  return bad;
}

}  // namespace scx_cidq
