// scxkit::CpuSet — a set of CPU numbers in the kernel's list form ("0-3,6").
// Scenarios, cgroup cpusets, affinities and the CPUs a worker ran on all use it.
#pragma once

#include <sched.h>

#include <bitset>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit {

class CpuSet {
 public:
  static constexpr std::size_t kMaxCpus = 256;  // workers record CPUs in 4 words of shared memory

  CpuSet() = default;
  // "0-3,6", blanks and a trailing newline allowed; "" is the empty set.
  static Result<CpuSet> parse(std::string_view list);
  static CpuSet of(std::initializer_list<std::size_t> cpus);
  // The CPUs this process may run on now.
  static Result<CpuSet> allowed();

  void add(std::size_t cpu);
  bool has(std::size_t cpu) const { return cpu < kMaxCpus && bits_.test(cpu); }
  bool empty() const { return bits_.none(); }
  std::size_t count() const { return bits_.count(); }
  bool subset_of(const CpuSet& other) const { return (bits_ & ~other.bits_).none(); }
  CpuSet operator&(const CpuSet& o) const { return CpuSet(bits_ & o.bits_); }
  CpuSet operator|(const CpuSet& o) const { return CpuSet(bits_ | o.bits_); }
  CpuSet minus(const CpuSet& o) const { return CpuSet(bits_ & ~o.bits_); }
  bool operator==(const CpuSet&) const = default;
  std::vector<std::size_t> cpus() const;
  std::string to_string() const;  // the list form; "" when empty
  cpu_set_t to_native() const;

  // Word `i` (64 CPUs each) of the set, and the set from such words.
  std::uint64_t word(std::size_t i) const;
  static CpuSet from_words(const std::uint64_t* words, std::size_t n);

 private:
  explicit CpuSet(std::bitset<kMaxCpus> b) : bits_(b) {}
  std::bitset<kMaxCpus> bits_;
};

}  // namespace scxkit
