#include "vm/shared_libs.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vm/process.hpp"

namespace scxkit::vm::internal {

LddOutput parse_ldd(std::string_view text) {
  LddOutput out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line.erase(0, first);
    std::string path;
    if (const auto arrow = line.find(" => "); arrow != std::string::npos) {
      const std::string rest = line.substr(arrow + 4);
      if (rest.rfind("not found", 0) == 0) {
        out.missing.push_back(line.substr(0, arrow));
        continue;
      }
      path = rest.substr(0, rest.find(" ("));
    } else if (line[0] == '/') {
      path = line.substr(0, line.find(" ("));
    }
    if (!path.empty() && path[0] == '/' &&
        std::find(out.paths.begin(), out.paths.end(), path) == out.paths.end()) {
      out.paths.push_back(path);
    }
  }
  return out;
}

Result<std::vector<std::string>> shared_libraries(const std::string& binary) {
  char magic[4] = {};
  std::ifstream(binary, std::ios::binary).read(magic, 4);
  if (std::string_view(magic, 4) !=
      "\x7f"
      "ELF")
    return std::vector<std::string>{};
  auto run = run_tool({.argv = {"ldd", binary}}, Clock::now() + std::chrono::seconds(60));
  if (!run) return tl::unexpected(run.error());
  // A static binary: "not a dynamic executable" (glibc's ldd exits 1).
  if (run->status != 0) return std::vector<std::string>{};
  auto parsed = parse_ldd(run->out);
  if (!parsed.missing.empty()) {
    return make_error(
        Errc::not_found,
        fmt::format("{} needs {} and the dynamic loader cannot find {}", binary,
                    fmt::join(parsed.missing, ", "), parsed.missing.size() == 1 ? "it" : "them"));
  }
  return parsed.paths;
}

}  // namespace scxkit::vm::internal
