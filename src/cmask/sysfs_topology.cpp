// The host's CPU topology, read from sysfs the way the kernel's cid walk sees it.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "scxkit/cpulist.hpp"
#include "scxkit/topo.hpp"

namespace scxkit {

namespace fs = std::filesystem;

namespace {

// The whole of a small sysfs file, or nullopt when it cannot be read.
std::optional<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::vector<std::uint32_t>> read_list(const fs::path& path, std::uint32_t limit) {
  const auto text = read_small_file(path);
  if (!text) {
    return make_error(Errc::not_found,
                      fmt::format("cannot read {}: is sysfs mounted there?", path.string()));
  }
  auto list = parse_cpulist(*text, limit);
  if (!list) {
    return make_error(list.error().code,
                      fmt::format("{}: {}", path.string(), list.error().message));
  }
  return list;
}

// "nodeM" -> M, for directory entries of that shape.
std::optional<std::int32_t> node_number(const std::string& name) {
  if (name.size() <= 4 || name.compare(0, 4, "node") != 0) return std::nullopt;
  std::int32_t n = 0;
  const auto [ptr, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), n);
  if (ec != std::errc{} || ptr != name.data() + name.size()) return std::nullopt;
  return n;
}

// Entries of `dir` named nodeM, ascending; none when `dir` cannot be listed.
std::vector<std::int32_t> node_entries(const fs::path& dir) {
  std::vector<std::int32_t> nodes;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto n = node_number(it->path().filename().string())) nodes.push_back(*n);
  }
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

// The last cache leaf (highest indexK) of a CPU: the kernel's LLC.
std::optional<fs::path> last_cache_leaf(const fs::path& cache_dir) {
  std::optional<std::pair<std::uint32_t, fs::path>> best;
  std::error_code ec;
  for (fs::directory_iterator it(cache_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= 5 || name.compare(0, 5, "index") != 0) continue;
    std::uint32_t k = 0;
    const auto [ptr, err] = std::from_chars(name.data() + 5, name.data() + name.size(), k);
    if (err != std::errc{} || ptr != name.data() + name.size()) continue;
    if (!best || k > best->first) best = std::make_pair(k, it->path());
  }
  if (!best) return std::nullopt;
  return best->second;
}

}  // namespace

Result<MachineTopology> read_host_topology(const fs::path& sysfs) {
  const fs::path cpu_dir = sysfs / "cpu";
  MachineTopology m;
  auto possible = read_list(cpu_dir / "possible", UINT32_MAX);
  if (!possible) return tl::unexpected(possible.error());
  if (possible->empty()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{} lists no CPU", (cpu_dir / "possible").string()));
  }
  m.possible = std::move(*possible);
  m.nr_cpu_ids = m.possible.back() + 1;
  auto online = read_list(cpu_dir / "online", m.nr_cpu_ids);
  if (!online) return tl::unexpected(online.error());
  m.online = std::move(*online);
  m.cpus.resize(m.nr_cpu_ids);

  // cpumask_of_node(): node/nodeM/cpulist. Without NUMA there is no node
  // directory and cpu_to_node() is 0 for every CPU.
  const std::vector<std::int32_t> nodes = node_entries(sysfs / "node");
  for (std::int32_t n : nodes) {
    auto cpus = read_list(sysfs / "node" / fmt::format("node{}", n) / "cpulist", m.nr_cpu_ids);
    if (!cpus) return tl::unexpected(cpus.error());
    m.node_cpus[n] = std::move(*cpus);
  }
  if (nodes.empty()) m.node_cpus[0] = m.online;

  for (std::uint32_t cpu : m.possible) {
    MachineTopology::Cpu& c = m.cpus[cpu];
    const fs::path dir = cpu_dir / fmt::format("cpu{}", cpu);
    // cpu_to_node(): the cpuN/nodeM link, else membership of a node's list.
    if (nodes.empty()) {
      c.node = 0;
    } else if (auto links = node_entries(dir); !links.empty()) {
      c.node = links.front();
    } else {
      for (const auto& [n, list] : m.node_cpus) {
        if (std::binary_search(list.begin(), list.end(), cpu)) c.node = n;
      }
    }
    if (auto pkg = read_small_file(dir / "topology" / "physical_package_id")) {
      std::from_chars(pkg->data(), pkg->data() + pkg->size(), c.package);
    }
    // Offline CPUs have no topology or cache directory; the walk never asks.
    if (fs::exists(dir / "topology" / "thread_siblings_list")) {
      auto sib = read_list(dir / "topology" / "thread_siblings_list", m.nr_cpu_ids);
      if (!sib) return tl::unexpected(sib.error());
      c.siblings = std::move(*sib);
    } else {
      c.siblings = {cpu};
    }
    if (auto leaf = last_cache_leaf(dir / "cache")) {
      auto llc = read_list(*leaf / "shared_cpu_list", m.nr_cpu_ids);
      if (!llc) return tl::unexpected(llc.error());
      c.llc = std::move(*llc);
    }
  }
  return m;
}

}  // namespace scxkit
