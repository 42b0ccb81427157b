#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "scxkit/cgroup.hpp"

namespace scxkit {

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t end = std::min(s.find(sep, start), s.size());
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// mountinfo escapes blanks in paths as octal (\040).
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

const CgroupMount* CgroupLayout::v2() const {
  for (const auto& m : mounts) {
    if (m.version == 2) return &m;
  }
  return nullptr;
}

const CgroupMount* CgroupLayout::for_controller(std::string_view controller) const {
  for (const auto& m : mounts) {
    for (const auto& c : m.controllers) {
      if (c == controller) return &m;
    }
  }
  return nullptr;
}

std::string CgroupLayout::summary() const {
  std::vector<std::string> v1;
  for (const auto& m : mounts) {
    if (m.version == 1) v1.insert(v1.end(), m.controllers.begin(), m.controllers.end());
  }
  std::string out;
  if (!v1.empty()) out = fmt::format("v1: {}", fmt::join(v1, " "));
  if (const CgroupMount* u = v2()) {
    if (!out.empty()) out += "; ";
    out += fmt::format(
        "v2 at {} (controllers: {})", u->mount_point,
        u->controllers.empty() ? "none" : fmt::format("{}", fmt::join(u->controllers, " ")));
  }
  return out;
}

Result<CgroupLayout> parse_cgroup_layout(std::string_view mountinfo) {
  CgroupLayout layout;
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto left = split(std::string_view(line).substr(0, dash), ' ');
    const auto right = split(std::string_view(line).substr(dash + 3), ' ');
    if (left.size() < 6 || right.size() < 3) continue;
    CgroupMount m;
    m.mount_point = unescape(left[4]);
    if (right[0] == "cgroup2") {
      m.version = 2;
      std::ifstream controllers(m.mount_point + "/cgroup.controllers");
      std::string c;
      while (controllers >> c) m.controllers.push_back(c);
    } else if (right[0] == "cgroup") {
      m.version = 1;
      for (const auto& opt : split(right[2], ',')) {
        if (opt == "rw" || opt == "ro" || opt.find('=') != std::string::npos || opt == "noprefix" ||
            opt == "clone_children" || opt == "xattr") {
          continue;
        }
        m.controllers.push_back(opt);
      }
    } else {
      continue;
    }
    layout.mounts.push_back(std::move(m));
  }
  return layout;
}

Result<CgroupLayout> detect_cgroup_layout(const std::string& mountinfo_path) {
  std::ifstream in(mountinfo_path);
  if (!in) return make_error(Errc::not_found, fmt::format("cannot read {}", mountinfo_path));
  std::stringstream text;
  text << in.rdbuf();
  return parse_cgroup_layout(text.str());
}

}  // namespace scxkit
