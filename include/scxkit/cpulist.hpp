// The kernel's list format for sets of CPU (or cid) numbers: "0-3,8,10-11".
// sysfs writes it (cpu/online, cache/index*/shared_cpu_list, node*/cpulist),
// cgroup cpusets and taskset take it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit {

// Parses a list into ascending, distinct numbers. Accepts what the kernel's
// bitmap_parselist() accepts without strides: comma-separated numbers and
// "a-b" ranges (a <= b), surrounding blanks and one trailing newline; "" and
// "\n" are the empty set. Every number must be below `limit`, which also
// bounds the result's size.
Result<std::vector<std::uint32_t>> parse_cpulist(std::string_view text, std::uint32_t limit);

// Formats ascending, distinct numbers the way the kernel's "%*pbl" does:
// runs of consecutive numbers as "a-b", single numbers alone, "" for none.
std::string format_cpulist(std::span<const std::uint32_t> ascending);

}  // namespace scxkit
