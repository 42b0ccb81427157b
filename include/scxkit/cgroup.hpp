// Where this host's cgroup hierarchies are, read from /proc/self/mountinfo —
// never assumed: hosts mix cgroup v1 controllers and a cgroup2 tree freely.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit {

struct CgroupMount {
  std::string mount_point;
  int version = 0;                       // 1 or 2
  std::vector<std::string> controllers;  // v1: from mount options; v2: cgroup.controllers
};

struct CgroupLayout {
  std::vector<CgroupMount> mounts;

  const CgroupMount* v2() const;
  // The mount that controls `controller`: a v1 hierarchy, or the v2 tree if it has it.
  const CgroupMount* for_controller(std::string_view controller) const;
  // "v1: cpu cpuset ...; v2 at /sys/fs/cgroup/unified (controllers: ...)"
  std::string summary() const;
};

// Parses mountinfo text. v2 controllers are read from <mount>/cgroup.controllers.
Result<CgroupLayout> parse_cgroup_layout(std::string_view mountinfo);
Result<CgroupLayout> detect_cgroup_layout(
    const std::string& mountinfo_path = "/proc/self/mountinfo");

}  // namespace scxkit
