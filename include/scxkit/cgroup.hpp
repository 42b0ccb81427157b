// Cgroups for scxkit: where this host's hierarchies are, and the one OS layer
// that creates, fills, configures, kills and removes scxkit's own cgroups.
//
// The layout is read from /proc/self/mountinfo — never assumed: hosts mix
// cgroup v1 controllers and a cgroup2 tree freely (this project's development
// host mounts v1 cpu, cpuset, ... under /sys/fs/cgroup/<controller> and a
// cgroup2 at /sys/fs/cgroup/unified; its VM guest has a plain cgroup2).
//
//   auto layout = detect_cgroup_layout();
//   remove_stale_cgroup_runs(*layout);              // what killed runs left behind
//   auto run = Cgroup::create_run(*layout, "scxkit", CgroupControllers::cpu);
//   auto workers = run->create_child("workers");
//   workers->set_cpu_weight(200);
//   workers->add(pid);
//   workers->kill(2s);                              // every member, helpers included
//   workers->remove(2s);                            // or let the destructors do both
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
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

// Controllers a Cgroup is also created for, beyond process tracking.
enum class CgroupControllers : unsigned { none = 0, cpu = 1U << 0, cpuset = 1U << 1 };
constexpr CgroupControllers operator|(CgroupControllers a, CgroupControllers b) {
  return static_cast<CgroupControllers>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr bool has(CgroupControllers set, CgroupControllers c) {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(c)) != 0;
}

// One cgroup, present under the same relative path in every hierarchy it
// needs: the tracking hierarchy (the cgroup2 tree when one is mounted —
// the unified one on a mixed host —, else the v1 freezer, else the first v1
// controller asked for) and the hierarchy of each controller asked for
// (v1 or v2; on v2 the controllers are enabled in the ancestors'
// cgroup.subtree_control). A new v1 cpuset cgroup copies its parent's cpus
// and mems, so processes can join it at once.
//
// Owning: destroying a Cgroup kills its members and removes the directories
// it created (bounded; errors dropped — call remove() to see them). Moves
// only. Every OS call is checked; errors are Result<T>. Creating cgroups
// needs root (or a delegated subtree): otherwise the error says so (EACCES,
// EPERM or EROFS in sys_errno) and callers fall back to weaker containment.
class Cgroup {
 public:
  // Creates `path` (relative to each hierarchy's mount, e.g. "scxkit/x/workers";
  // missing parents are created) in every hierarchy needed.
  static Result<Cgroup> create(const CgroupLayout& layout, std::string_view path,
                               CgroupControllers controllers = CgroupControllers::none);
  // A new run directory of this process, "<parent>/run-<pid>-<start>-<pidns>-<n>":
  // it names its owner (pid, start time in clock ticks, pid namespace inode) so
  // that remove_stale_cgroup_runs() can tell when the owner died, even after
  // pid reuse. Removing it also removes `parent` when that is left empty.
  static Result<Cgroup> create_run(const CgroupLayout& layout, std::string_view parent = "scxkit",
                                   CgroupControllers controllers = CgroupControllers::none);
  // A child cgroup "<path>/<name>" in the same hierarchies.
  Result<Cgroup> create_child(std::string_view name) const;

  Cgroup(Cgroup&& o) noexcept;
  Cgroup& operator=(Cgroup&& o) noexcept;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  ~Cgroup();

  const std::string& path() const { return path_; }  // relative, e.g. "scxkit/run-1-2-3-0"
  // The absolute directories, the tracking hierarchy's first.
  std::vector<std::string> directories() const;
  // The cgroup.procs file of every hierarchy. A process joins by writing "0"
  // to each: a child can do so between fork and exec (async-signal-safe), so
  // it never runs a single instruction of the new program outside.
  std::vector<std::string> procs_files() const;
  // True when killing uses the kernel's cgroup.kill (cgroup v2, Linux 5.14+).
  bool has_kill_file() const;

  // Moves process `pid` (all its threads) into this cgroup, in every hierarchy.
  Result<void> add(pid_t pid) const;
  // Members of this cgroup and its descendants, read from the tracking hierarchy.
  Result<std::vector<pid_t>> pids() const;
  // Members that exited but are not reaped yet (zombies): cgroup.procs no
  // longer lists them, /proc/<pid>/cgroup still names the cgroup. A subreaper
  // that killed the cgroup reaps these too.
  std::vector<pid_t> exited_unreaped() const;
  // cpuset.cpus / cpuset.mems (kernel list syntax: "0-3,6"); needs CgroupControllers::cpuset.
  Result<void> set_cpus(std::string_view cpus) const;
  Result<void> set_mems(std::string_view mems) const;
  // 1..10000, 100 the default: v2 cpu.weight, v1 cpu.shares = weight * 1024 / 100
  // (at least 2). Needs CgroupControllers::cpu.
  Result<void> set_cpu_weight(unsigned weight) const;

  // SIGKILLs every member, descendants included, and waits until none is
  // left: cgroup.kill after freezing (so the returned list is complete), or
  // without it a loop of freeze, SIGKILL every listed pid, thaw, until empty.
  // Returns the pids killed, so a caller can reap those that are its children.
  // Errc::busy if a member is still there at the timeout (stuck in the kernel).
  Result<std::vector<pid_t>> kill(std::chrono::milliseconds timeout) const;
  // kill(), then rmdir in every hierarchy (descendants first, retried while the
  // kernel still holds dying members), then the parents this object created
  // (or a run's parent) when they are left empty. Afterwards the object is empty.
  Result<void> remove(std::chrono::milliseconds timeout);

 private:
  struct Hierarchy {
    std::string mount;
    int version = 0;
    bool tracker = false;
    bool freezer = false;  // a v1 freezer hierarchy
    bool cpu = false;
    bool cpuset = false;
  };
  friend Result<std::size_t> remove_stale_cgroup_runs(const CgroupLayout&, std::string_view,
                                                      std::chrono::milliseconds);
  Cgroup() = default;
  static Result<Cgroup> make(std::vector<Hierarchy> hierarchies, std::string path);
  std::string dir(const Hierarchy& h) const { return h.mount + "/" + path_; }
  std::string path_;
  std::vector<Hierarchy> hierarchies_;  // the tracker first
  std::vector<std::string> created_;    // ancestors this object made (absolute), outermost first
  bool prune_parent_ = false;
};

// Removes every "<parent>/run-..." cgroup (in any hierarchy of `layout`) whose
// owner is dead — the process is gone, or its pid now names a process started
// at another time — killing what is still inside. Runs of other pid
// namespaces are left alone (their pids mean nothing here). Returns how many
// run directories were removed.
Result<std::size_t> remove_stale_cgroup_runs(
    const CgroupLayout& layout, std::string_view parent = "scxkit",
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Sets the cpu weight of `parent` (in the hierarchy with the cpu controller)
// to the sum of its children's: the run cgroups under it then weigh against
// the rest of the machine as much as they weigh themselves. Left at the
// default, `parent` weighs one nice-0 task and every run under it shares
// that, however many workers it has. Call after a run's weight was set and
// after a run was removed; concurrent callers serialize on a lock of the
// directory. Returns the weight set (v2 scale), 0 when there is nothing to weigh.
Result<unsigned> weigh_cgroup_runs(const CgroupLayout& layout, std::string_view parent = "scxkit");

}  // namespace scxkit
