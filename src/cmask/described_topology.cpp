// Machines described as nodes x LLCs x cores x threads, for tests and `scxkit topo`.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "scxkit/topo.hpp"

namespace scxkit {

Result<TopologySpec> parse_topology_spec(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_argument,
                      fmt::format("topology \"{}\": {}; write N,L,C,T (nodes, LLCs per node, "
                                  "cores per LLC, threads per core), e.g. 2,2,4,2",
                                  text, why));
  };
  std::array<std::uint32_t, 4> v{};
  std::string_view rest = text;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::size_t comma = rest.find(',');
    if ((comma == std::string_view::npos) != (i == v.size() - 1)) {
      return bad("it needs exactly four numbers");
    }
    const std::string_view item = rest.substr(0, comma);
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v[i]);
    if (item.empty() || ec != std::errc{} || ptr != item.data() + item.size()) {
      return bad(fmt::format("\"{}\" is not a number", item));
    }
    if (v[i] == 0) return bad("every count must be at least 1");
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  TopologySpec spec{
      .nodes = v[0], .llcs_per_node = v[1], .cores_per_llc = v[2], .threads_per_core = v[3]};
  return spec;
}

Result<MachineTopology> describe_topology(const TopologySpec& s) {
  // Each count is capped first so the products below cannot overflow.
  const std::uint32_t largest =
      std::max({s.nodes, s.llcs_per_node, s.cores_per_llc, s.threads_per_core});
  const std::uint64_t cores =
      largest > kMaxDescribedCpus ? 0 : std::uint64_t{s.nodes} * s.llcs_per_node * s.cores_per_llc;
  const std::uint64_t total = cores * s.threads_per_core;
  if (total == 0 || total > kMaxDescribedCpus) {
    return make_error(
        Errc::out_of_range,
        fmt::format("a described machine has 1 to {} CPUs; {}x{}x{}x{} makes {}", kMaxDescribedCpus,
                    s.nodes, s.llcs_per_node, s.cores_per_llc, s.threads_per_core, total));
  }
  MachineTopology m;
  m.nr_cpu_ids = static_cast<std::uint32_t>(total);
  m.cpus.resize(m.nr_cpu_ids);
  std::vector<bool> offline(m.nr_cpu_ids);
  for (std::uint32_t cpu : s.offline) {
    if (cpu >= m.nr_cpu_ids) {
      return make_error(Errc::out_of_range,
                        fmt::format("offline CPU {} does not exist: the machine has CPUs 0-{}", cpu,
                                    m.nr_cpu_ids - 1));
    }
    offline[cpu] = true;
  }
  // CPU number of thread t of the core with global index `core`.
  const auto cpu_of = [&](std::uint64_t core, std::uint32_t t) {
    return static_cast<std::uint32_t>(s.smt_split ? t * cores + core
                                                  : core * s.threads_per_core + t);
  };
  std::uint64_t core = 0;
  for (std::uint32_t n = 0; n < s.nodes; ++n) {
    std::vector<std::uint32_t>& node_list = m.node_cpus[static_cast<std::int32_t>(n)];
    for (std::uint32_t l = 0; l < s.llcs_per_node; ++l) {
      std::vector<std::uint32_t> llc;
      const std::uint64_t first_core = core;
      for (std::uint32_t c = 0; c < s.cores_per_llc; ++c, ++core) {
        std::vector<std::uint32_t> siblings;
        for (std::uint32_t t = 0; t < s.threads_per_core; ++t) siblings.push_back(cpu_of(core, t));
        std::sort(siblings.begin(), siblings.end());
        for (std::uint32_t cpu : siblings) {
          m.cpus[cpu].node = static_cast<std::int32_t>(n);
          m.cpus[cpu].package = static_cast<std::int32_t>(n);
          m.cpus[cpu].siblings = siblings;
          llc.push_back(cpu);
          node_list.push_back(cpu);
        }
      }
      std::sort(llc.begin(), llc.end());
      for (std::uint64_t c = first_core; c < core; ++c) {
        for (std::uint32_t t = 0; t < s.threads_per_core; ++t) m.cpus[cpu_of(c, t)].llc = llc;
      }
    }
    std::sort(node_list.begin(), node_list.end());
  }
  for (std::uint32_t cpu = 0; cpu < m.nr_cpu_ids; ++cpu) {
    m.possible.push_back(cpu);
    if (offline[cpu]) continue;
    m.online.push_back(cpu);
    // Like the kernel's sibling masks (and sysfs), an online CPU's siblings
    // are the online threads of its core.
    std::erase_if(m.cpus[cpu].siblings, [&](std::uint32_t sib) { return offline[sib]; });
  }
  return m;
}

}  // namespace scxkit
