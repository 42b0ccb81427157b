#include "scxkit/cpu_set.hpp"

#include <cerrno>
#include <charconv>

#include <fmt/format.h>

namespace scxkit {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<std::size_t> parse_cpu(std::string_view s, std::string_view whole) {
  s = trim(s);
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("'{}' is not a CPU list (expected e.g. \"0-3,6\")", whole));
  }
  if (v >= CpuSet::kMaxCpus) {
    return make_error(Errc::out_of_range, fmt::format("CPU {} in '{}' is past the {} CPUs scxkit "
                                                      "tracks",
                                                      v, whole, CpuSet::kMaxCpus));
  }
  return v;
}

}  // namespace

Result<CpuSet> CpuSet::parse(std::string_view list) {
  CpuSet set;
  std::string_view rest = trim(list);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto dash = item.find('-');
    auto lo = parse_cpu(item.substr(0, dash), list);
    if (!lo) return tl::unexpected(lo.error());
    std::size_t hi_v = *lo;
    if (dash != std::string_view::npos) {
      auto hi = parse_cpu(item.substr(dash + 1), list);
      if (!hi) return tl::unexpected(hi.error());
      if (*hi < *lo) {
        return make_error(Errc::invalid_argument,
                          fmt::format("range '{}' in '{}' runs backwards", trim(item), list));
      }
      hi_v = *hi;
    }
    for (std::size_t c = *lo; c <= hi_v; ++c) set.bits_.set(c);
  }
  return set;
}

CpuSet CpuSet::of(std::initializer_list<std::size_t> cpus) {
  CpuSet set;
  for (auto c : cpus) set.add(c);
  return set;
}

Result<CpuSet> CpuSet::allowed() {
  cpu_set_t native;
  CPU_ZERO(&native);
  if (sched_getaffinity(0, sizeof(native), &native) != 0) {
    return os_error("sched_getaffinity", errno);
  }
  CpuSet set;
  for (std::size_t c = 0; c < kMaxCpus && c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &native)) set.add(c);
  }
  return set;
}

void CpuSet::add(std::size_t cpu) {
  if (cpu < kMaxCpus) bits_.set(cpu);
}

std::vector<std::size_t> CpuSet::cpus() const {
  std::vector<std::size_t> out;
  for (std::size_t c = 0; c < kMaxCpus; ++c) {
    if (bits_.test(c)) out.push_back(c);
  }
  return out;
}

std::string CpuSet::to_string() const {
  std::string out;
  std::size_t c = 0;
  while (c < kMaxCpus) {
    if (!bits_.test(c)) {
      ++c;
      continue;
    }
    std::size_t end = c;
    while (end + 1 < kMaxCpus && bits_.test(end + 1)) ++end;
    if (!out.empty()) out += ',';
    out += end == c ? fmt::format("{}", c) : fmt::format("{}-{}", c, end);
    c = end + 1;
  }
  return out;
}

cpu_set_t CpuSet::to_native() const {
  cpu_set_t native;
  CPU_ZERO(&native);
  for (auto c : cpus()) CPU_SET(c, &native);
  return native;
}

std::uint64_t CpuSet::word(std::size_t i) const {
  std::uint64_t w = 0;
  for (std::size_t b = 0; b < 64 && i * 64 + b < kMaxCpus; ++b) {
    if (bits_.test(i * 64 + b)) w |= std::uint64_t{1} << b;
  }
  return w;
}

CpuSet CpuSet::from_words(const std::uint64_t* words, std::size_t n) {
  CpuSet set;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t b = 0; b < 64; ++b) {
      if ((words[i] >> b) & 1) set.add(i * 64 + b);
    }
  }
  return set;
}

}  // namespace scxkit
