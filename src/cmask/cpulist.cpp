#include "scxkit/cpulist.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>

namespace scxkit {

namespace {

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

Result<std::uint32_t> parse_number(std::string_view token, std::string_view whole,
                                   std::uint32_t limit) {
  std::uint32_t value = 0;
  const auto* end = token.data() + token.size();
  const auto [ptr, ec] = std::from_chars(token.data(), end, value);
  if (token.empty() || ec != std::errc{} || ptr != end) {
    return make_error(Errc::invalid_argument,
                      fmt::format("cpu list \"{}\": \"{}\" is not a number; write numbers and "
                                  "ranges like \"0-3,8\"",
                                  whole, token));
  }
  if (value >= limit) {
    return make_error(Errc::out_of_range,
                      fmt::format("cpu list \"{}\": {} is out of range (the limit is {})", whole,
                                  value, limit - 1));
  }
  return value;
}

}  // namespace

Result<std::vector<std::uint32_t>> parse_cpulist(std::string_view text, std::uint32_t limit) {
  const std::string_view whole = trim(text);
  std::vector<bool> seen;
  std::vector<std::uint32_t> out;
  std::string_view rest = whole;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty() || (comma != std::string_view::npos && rest.empty())) {
      return make_error(Errc::invalid_argument,
                        fmt::format("cpu list \"{}\" has an empty item; separate numbers and "
                                    "ranges with single commas",
                                    whole));
    }
    const std::size_t dash = item.find('-');
    auto first = parse_number(trim(item.substr(0, dash)), whole, limit);
    if (!first) return tl::unexpected(first.error());
    std::uint32_t last = *first;
    if (dash != std::string_view::npos) {
      auto hi = parse_number(trim(item.substr(dash + 1)), whole, limit);
      if (!hi) return tl::unexpected(hi.error());
      if (*hi < *first) {
        return make_error(Errc::invalid_argument,
                          fmt::format("cpu list \"{}\": range \"{}\" runs backwards; write the "
                                      "lower number first",
                                      whole, item));
      }
      last = *hi;
    }
    if (seen.size() <= last) seen.resize(std::size_t{last} + 1);
    for (std::uint64_t n = *first; n <= last; ++n) {
      if (!seen[n]) out.push_back(static_cast<std::uint32_t>(n));
      seen[n] = true;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string format_cpulist(std::span<const std::uint32_t> ascending) {
  std::string out;
  for (std::size_t i = 0; i < ascending.size();) {
    std::size_t j = i;
    while (j + 1 < ascending.size() && ascending[j + 1] == ascending[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ascending[i]);
    if (j > i) out += fmt::format("-{}", ascending[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace scxkit
