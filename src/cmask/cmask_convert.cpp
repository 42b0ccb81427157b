// cmask <-> CPU sets and list strings, through a cid table.
#include <fmt/format.h>

#include <algorithm>

#include "scxkit/cmask.hpp"
#include "scxkit/cpulist.hpp"
#include "scxkit/topo.hpp"

namespace scxkit {

namespace {

// The cids of `cpus`, each checked to be inside the window of `mask`.
Result<std::vector<std::uint32_t>> cids_of_cpus(const std::vector<std::uint32_t>& cpus,
                                                const CidTable& table, const Cmask& mask) {
  std::vector<std::uint32_t> cids;
  cids.reserve(cpus.size());
  for (std::uint32_t cpu : cpus) {
    auto cid = table.cpu_to_cid(cpu);
    if (!cid) return tl::unexpected(cid.error());
    if (!mask.contains(*cid)) {
      return make_error(Errc::out_of_range,
                        fmt::format("CPU {} has cid {}, outside the cmask window [{}, {})", cpu,
                                    *cid, mask.base(), std::uint64_t{mask.end()}));
    }
    cids.push_back(*cid);
  }
  return cids;
}

Result<std::vector<std::uint32_t>> cpus_of(const Cmask& mask, const CidTable& table) {
  std::vector<std::uint32_t> cpus;
  for (std::uint32_t cid : mask.cids()) {
    auto cpu = table.cid_to_cpu(cid);
    if (!cpu) return tl::unexpected(cpu.error());
    cpus.push_back(*cpu);
  }
  std::sort(cpus.begin(), cpus.end());
  return cpus;
}

}  // namespace

void Cmask::assign_cids(const std::vector<std::uint32_t>& cids) {
  zero();
  for (std::uint32_t cid : cids) *word_of(cid) |= 1ULL << (cid & 63);
}

Result<void> Cmask::assign_cpu_set(const cpu_set_t& cpus, const CidTable& table) {
  std::vector<std::uint32_t> list;
  for (std::uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &cpus)) list.push_back(cpu);
  }
  auto cids = cids_of_cpus(list, table, *this);
  if (!cids) return tl::unexpected(cids.error());
  assign_cids(*cids);
  return {};
}

Result<cpu_set_t> Cmask::to_cpu_set(const CidTable& table) const {
  auto cpus = cpus_of(*this, table);
  if (!cpus) return tl::unexpected(cpus.error());
  cpu_set_t set;
  CPU_ZERO(&set);
  for (std::uint32_t cpu : *cpus) {
    if (cpu >= CPU_SETSIZE) {
      return make_error(Errc::too_big,
                        fmt::format("CPU {} does not fit a cpu_set_t ({} CPUs)", cpu, CPU_SETSIZE));
    }
    CPU_SET(cpu, &set);
  }
  return set;
}

Result<void> Cmask::assign_cpulist(std::string_view cpulist, const CidTable& table) {
  auto cpus = parse_cpulist(cpulist, table.nr_cpu_ids());
  if (!cpus) return tl::unexpected(cpus.error());
  auto cids = cids_of_cpus(*cpus, table, *this);
  if (!cids) return tl::unexpected(cids.error());
  assign_cids(*cids);
  return {};
}

Result<std::string> Cmask::to_cpulist(const CidTable& table) const {
  return cpus_of(*this, table).map([](const auto& cpus) { return format_cpulist(cpus); });
}

Result<void> Cmask::assign_cidlist(std::string_view cidlist) {
  auto cids = parse_cpulist(cidlist, end());
  if (!cids) return tl::unexpected(cids.error());
  for (std::uint32_t cid : *cids) {
    if (auto ok = check_cid(cid); !ok) return ok;
  }
  assign_cids(*cids);
  return {};
}

std::string Cmask::to_cidlist() const {
  const CidRange set = cids();
  const std::vector<std::uint32_t> list(set.begin(), set.end());
  return format_cpulist(list);
}

}  // namespace scxkit
