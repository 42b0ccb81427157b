#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "scxkit/cpulist.hpp"
#include "scxkit/topo.hpp"

namespace scxkit::cli {

namespace {

struct TopoOptions {
  std::string topology;  // "N,L,C,T"; empty: the host
  bool smt_split = false;
  std::string offline;
  std::string sysfs = "/sys/devices/system";
  std::uint32_t shard_size = 0;  // 0: the kernel's default
  bool json = false;
};

Result<MachineTopology> machine(const TopoOptions& o) {
  if (o.topology.empty()) {
    if (o.smt_split || !o.offline.empty()) {
      return make_error(Errc::invalid_argument,
                        "--smt-split and --offline describe a machine: use them with --topology");
    }
    return read_host_topology(o.sysfs);
  }
  auto spec = parse_topology_spec(o.topology);
  if (!spec) return tl::unexpected(spec.error());
  spec->smt_split = o.smt_split;
  auto offline = parse_cpulist(o.offline, kMaxDescribedCpus);
  if (!offline) return tl::unexpected(offline.error());
  spec->offline = std::move(*offline);
  return describe_topology(*spec);
}

std::string field(std::int32_t v) {
  return v < 0 ? "-" : std::to_string(v);
}

void print_table(const CidTable& t, const MachineTopology& m) {
  fmt::print("{} cids ({} online CPUs), nr_cpu_ids {}\n", t.nr_cids(), m.online.size(),
             t.nr_cpu_ids());
  fmt::print("{:>5} {:>5} {:>5} {:>5} {:>5} {:>5}\n", "cid", "cpu", "node", "llc", "core", "shard");
  for (std::uint32_t cid = 0; cid < t.nr_cids(); ++cid) {
    const CidTopo topo = *t.topo(cid);
    fmt::print("{:>5} {:>5} {:>5} {:>5} {:>5} {:>5}\n", cid, *t.cid_to_cpu(cid),
               field(topo.node_idx), field(topo.llc_idx), field(topo.core_idx),
               field(topo.shard_idx));
  }
  if (!t.llc_fallback_cpus().empty()) {
    fmt::print("no cacheinfo, LLC taken from the node: CPUs {}\n",
               format_cpulist(t.llc_fallback_cpus()));
  }
  if (!t.online_without_topology().empty()) {
    fmt::print("online without usable topology: CPUs {}\n",
               format_cpulist(t.online_without_topology()));
  }
}

void print_json(const CidTable& t) {
  nlohmann::json cids = nlohmann::json::array();
  for (std::uint32_t cid = 0; cid < t.nr_cids(); ++cid) {
    const CidTopo topo = *t.topo(cid);
    cids.push_back({{"cid", cid},
                    {"cpu", *t.cid_to_cpu(cid)},
                    {"node_idx", topo.node_idx},
                    {"node_cid", topo.node_cid},
                    {"llc_idx", topo.llc_idx},
                    {"llc_cid", topo.llc_cid},
                    {"core_idx", topo.core_idx},
                    {"core_cid", topo.core_cid},
                    {"shard_idx", topo.shard_idx},
                    {"shard_cid", topo.shard_cid}});
  }
  const nlohmann::json out = {
      {"nr_cids", t.nr_cids()},
      {"nr_cpu_ids", t.nr_cpu_ids()},
      {"nr_shards", t.nr_shards()},
      {"cids", cids},
      {"llc_fallback_cpus", format_cpulist(t.llc_fallback_cpus())},
      {"online_without_topology", format_cpulist(t.online_without_topology())}};
  fmt::print("{}\n", out.dump(2));
}

}  // namespace

void add_topo_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "topo", "Print the cid table (cid, cpu, node, llc, core, shard) as sched_ext numbers it");
  static TopoOptions o;
  cmd->add_option("--topology", o.topology,
                  "A described machine N,L,C,T: nodes, LLCs per node, cores per LLC, threads "
                  "per core (default: this host)");
  cmd->add_flag("--smt-split", o.smt_split,
                "With --topology: number all first threads before second threads (x86 order)");
  cmd->add_option("--offline", o.offline, "With --topology: CPUs that are not online, e.g. 3,6-7");
  cmd->add_option("--sysfs", o.sysfs, "Where to read the host topology")->capture_default_str();
  cmd->add_option("--shard-size", o.shard_size,
                  "The scheduler's ops.cid_shard_size: cids per shard (default: the kernel's, 24)")
      ->check(CLI::Range(1u, 0xffffffffu));
  cmd->add_flag("--json", o.json, "Print one JSON object instead of a table");
  cmd->callback([&exit_code] {
    auto m = machine(o);
    auto table = m ? CidTable::build(*m, o.shard_size) : tl::unexpected(m.error());
    if (!table) {
      print_error(table.error().message);
      exit_code = 1;
      return;
    }
    if (o.json) {
      print_json(*table);
    } else {
      print_table(*table, *m);
    }
    exit_code = 0;
  });
}

}  // namespace scxkit::cli
