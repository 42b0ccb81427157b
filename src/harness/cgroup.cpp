#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "common/kernel_files.hpp"
#include "common/process.hpp"
#include "common/unique_fd.hpp"
#include "scxkit/cgroup.hpp"

namespace scxkit {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr long kCgroup2Magic = 0x63677270;               // CGROUP2_SUPER_MAGIC
constexpr long kCgroup1Magic = 0x27e0eb;                 // CGROUP_SUPER_MAGIC
constexpr std::size_t kProcsMax = std::size_t{8} << 20;  // ~1M pids

bool is_cgroup_fs(const std::string& mount) {
  struct statfs fs {};
  return statfs(mount.c_str(), &fs) == 0 &&
         (fs.f_type == kCgroup2Magic || fs.f_type == kCgroup1Magic);
}

bool valid_component(std::string_view c) {
  return !c.empty() && c != "." && c != ".." && c.size() <= 255 &&
         c.find('/') == std::string_view::npos && c.find('\n') == std::string_view::npos;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<void> check_path(std::string_view path) {
  for (auto c : components(path)) {
    if (!valid_component(c)) {
      return make_error(Errc::invalid_argument,
                        fmt::format("'{}' is not a relative cgroup path of plain names (no '.', "
                                    "'..', empty parts or a leading '/')",
                                    path));
    }
  }
  return {};
}

std::string parent_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

// A mkdir/rmdir failure that usually means "not root".
std::string permission_hint(int err) {
  return err == EACCES || err == EPERM || err == EROFS
             ? ". Creating cgroups needs root, or a cgroup subtree delegated to this user"
             : "";
}

void sleep_step(milliseconds& step, Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left > Clock::duration::zero())
    std::this_thread::sleep_for(std::min<Clock::duration>(step, left));
  step = std::min(step * 2, milliseconds(10));
}

// Subdirectories (child cgroups) of `dir`; none if it is gone.
std::vector<std::string> child_dirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..") out.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  return out;
}

// Members of `dir` and of every cgroup below it.
Result<std::vector<pid_t>> list_tree(const std::string& dir) {
  auto text = internal::read_kernel_file(dir + "/cgroup.procs", kProcsMax);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return std::vector<pid_t>{};  // removed meanwhile
    return tl::unexpected(text.error());
  }
  std::vector<pid_t> pids;
  const char* p = text->data();
  const char* end = p + text->size();
  while (p < end) {
    pid_t pid = 0;
    const auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc()) pids.push_back(pid);
    p = next + 1;
  }
  for (const auto& child : child_dirs(dir)) {
    auto more = list_tree(child);
    if (!more) return more;
    pids.insert(pids.end(), more->begin(), more->end());
  }
  return pids;
}

// v2 cgroup.events "<key> 1".
bool event_set(const std::string& dir, std::string_view key) {
  auto text = internal::read_kernel_file(dir + "/cgroup.events");
  return text && text->find(fmt::format("{} 1", key)) != std::string::npos;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// rmdir of `dir` and everything below it, retried while dying members keep it busy.
Result<void> remove_tree(const std::string& dir, Clock::time_point deadline) {
  for (const auto& child : child_dirs(dir)) {
    if (auto r = remove_tree(child, deadline); !r) return r;
  }
  milliseconds step(1);
  for (;;) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
    if (errno != EBUSY || Clock::now() >= deadline) {
      return os_error(fmt::format("removing cgroup {}{}", dir, permission_hint(errno)), errno);
    }
    sleep_step(step, deadline);
  }
}

// The owner part of a run name: "run-<pid>-<start ticks>-<pidns>-<n>".
struct RunOwner {
  pid_t pid = 0;
  unsigned long long start_ticks = 0, pidns = 0;
};
std::optional<RunOwner> parse_run_name(const std::string& name) {
  RunOwner o;
  int pid = 0;
  unsigned n = 0;
  int used = 0;
  if (std::sscanf(name.c_str(), "run-%d-%llu-%llu-%u%n", &pid, &o.start_ticks, &o.pidns, &n,
                  &used) != 4 ||
      static_cast<std::size_t>(used) != name.size() || pid <= 0) {
    return std::nullopt;
  }
  o.pid = pid;
  return o;
}

unsigned long long my_pidns() {
  struct stat st {};
  return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0;
}

}  // namespace

Result<Cgroup> Cgroup::create(const CgroupLayout& layout, std::string_view path,
                              CgroupControllers controllers) {
  if (auto ok = check_path(path); !ok) return tl::unexpected(ok.error());
  std::vector<Hierarchy> hs;
  const auto add = [&hs](const CgroupMount& m, const Hierarchy& flags) {
    for (auto& h : hs) {
      if (h.mount == m.mount_point) {
        h.tracker |= flags.tracker;
        h.cpu |= flags.cpu;
        h.cpuset |= flags.cpuset;
        return;
      }
    }
    Hierarchy h = flags;
    h.mount = m.mount_point;
    h.version = m.version;
    hs.push_back(h);
  };
  const CgroupMount* tracker = layout.v2();
  bool freezer = false;
  if (tracker == nullptr) {
    tracker = layout.for_controller("freezer");
    freezer = tracker != nullptr;
  }
  if (tracker == nullptr && has(controllers, CgroupControllers::cpu)) {
    tracker = layout.for_controller("cpu");
  }
  if (tracker == nullptr && has(controllers, CgroupControllers::cpuset)) {
    tracker = layout.for_controller("cpuset");
  }
  if (tracker == nullptr) {
    return make_error(
        Errc::unsupported,
        fmt::format("no cgroup hierarchy to contain processes in: neither a cgroup2 "
                    "tree nor a v1 freezer is mounted ({})",
                    layout.summary().empty() ? "no cgroup mounts" : layout.summary()));
  }
  add(*tracker, Hierarchy{.tracker = true, .freezer = freezer});
  for (const auto& [flag, name] :
       {std::pair{CgroupControllers::cpu, "cpu"}, std::pair{CgroupControllers::cpuset, "cpuset"}}) {
    if (!has(controllers, flag)) continue;
    const CgroupMount* m = layout.for_controller(name);
    if (m == nullptr) {
      return make_error(Errc::unsupported,
                        fmt::format("no mounted cgroup hierarchy has the '{}' controller ({})",
                                    name, layout.summary()));
    }
    add(*m, Hierarchy{.cpu = flag == CgroupControllers::cpu,
                      .cpuset = flag == CgroupControllers::cpuset});
  }
  return make(std::move(hs), std::string(path));
}

Result<Cgroup> Cgroup::make(std::vector<Hierarchy> hierarchies, std::string path) {
  Cgroup cg;
  cg.path_ = std::move(path);
  const auto comps = components(cg.path_);
  // Rolls back what this call made when a later step fails.
  std::vector<std::string> made;
  const auto fail = [&made](tl::unexpected<Error> e) -> Result<Cgroup> {
    for (auto it = made.rbegin(); it != made.rend(); ++it) rmdir(it->c_str());
    return e;
  };
  for (const auto& h : hierarchies) {
    if (!is_cgroup_fs(h.mount)) {
      return fail(make_error(Errc::unsupported,
                             fmt::format("{} is not a mounted cgroup file system", h.mount)));
    }
    // A concurrent remove() may prune a parent between our mkdirs: start over then.
    for (int attempt = 0;; ++attempt) {
      std::string cur = h.mount;
      bool restart = false;
      for (std::size_t i = 0; i < comps.size() && !restart; ++i) {
        if (h.version == 2 && (h.cpu || h.cpuset)) {
          // v2 controllers reach a child only through every ancestor's subtree_control.
          auto enabled = internal::read_kernel_file(cur + "/cgroup.subtree_control");
          if (!enabled) return fail(tl::unexpected(enabled.error()));
          for (const auto& [want, name] :
               {std::pair{h.cpu, "cpu"}, std::pair{h.cpuset, "cpuset"}}) {
            if (want && enabled->find(name) == std::string::npos) {
              auto w = internal::write_kernel_file(cur + "/cgroup.subtree_control",
                                                   fmt::format("+{}", name));
              if (!w) return fail(tl::unexpected(w.error()));
            }
          }
        }
        const std::string parent = cur;
        cur += "/";
        cur += comps[i];
        const bool last = i + 1 == comps.size();
        if (mkdir(cur.c_str(), 0755) != 0) {
          const int err = errno;
          if (err == ENOENT && attempt < 5) {
            restart = true;
            continue;
          }
          if (err == EEXIST && !last) continue;
          if (err == EEXIST) {
            return fail(make_error(Errc::already_exists,
                                   fmt::format("cgroup {} exists already: pick another name, or "
                                               "remove it if a dead run left it",
                                               cur)));
          }
          return fail(
              os_error(fmt::format("cannot create cgroup {}{}", cur, permission_hint(err)), err));
        }
        made.push_back(cur);
        if (!last) cg.created_.push_back(cur);
        if (h.version == 1 && h.cpuset) {
          // A new v1 cpuset is empty, and an empty cpuset accepts no process.
          for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
            auto from = internal::read_kernel_file(parent + "/" + file);
            if (!from) return fail(tl::unexpected(from.error()));
            auto w = internal::write_kernel_file(cur + "/" + file, *from);
            if (!w) return fail(tl::unexpected(w.error()));
          }
        }
      }
      if (!restart) break;
    }
  }
  cg.hierarchies_ = std::move(hierarchies);
  return cg;
}

Result<Cgroup> Cgroup::create_run(const CgroupLayout& layout, std::string_view parent,
                                  CgroupControllers controllers) {
  if (auto ok = check_path(parent); !ok) return tl::unexpected(ok.error());
  static std::atomic<unsigned> counter{0};
  const auto me = internal::read_proc_stat(getpid());
  if (!me) return make_error(Errc::system_error, "cannot read /proc/self/stat");
  auto cg = create(layout,
                   fmt::format("{}/run-{}-{}-{}-{}", parent, getpid(), me->start_ticks, my_pidns(),
                               counter.fetch_add(1)),
                   controllers);
  if (cg) cg->prune_parent_ = true;
  return cg;
}

Result<Cgroup> Cgroup::create_child(std::string_view name) const {
  if (!valid_component(name)) {
    return make_error(Errc::invalid_argument,
                      fmt::format("'{}' is not a plain cgroup name (no '/', '.' or '..')", name));
  }
  if (hierarchies_.empty()) return make_error(Errc::invalid_argument, "this cgroup was removed");
  return make(hierarchies_, fmt::format("{}/{}", path_, name));
}

Cgroup::Cgroup(Cgroup&& o) noexcept
    : path_(std::move(o.path_)),
      hierarchies_(std::exchange(o.hierarchies_, {})),
      created_(std::exchange(o.created_, {})),
      prune_parent_(o.prune_parent_) {}

Cgroup& Cgroup::operator=(Cgroup&& o) noexcept {
  if (this != &o) {
    if (!hierarchies_.empty()) (void)remove(milliseconds(2000));
    path_ = std::move(o.path_);
    hierarchies_ = std::exchange(o.hierarchies_, {});
    created_ = std::exchange(o.created_, {});
    prune_parent_ = o.prune_parent_;
  }
  return *this;
}

Cgroup::~Cgroup() {
  if (!hierarchies_.empty()) (void)remove(milliseconds(2000));
}

std::vector<std::string> Cgroup::directories() const {
  std::vector<std::string> out;
  for (const auto& h : hierarchies_) out.push_back(dir(h));
  return out;
}

std::vector<std::string> Cgroup::procs_files() const {
  std::vector<std::string> out;
  for (const auto& h : hierarchies_) out.push_back(dir(h) + "/cgroup.procs");
  return out;
}

bool Cgroup::has_kill_file() const {
  return !hierarchies_.empty() && hierarchies_.front().version == 2 &&
         exists(dir(hierarchies_.front()) + "/cgroup.kill");
}

Result<void> Cgroup::add(pid_t pid) const {
  if (hierarchies_.empty()) return make_error(Errc::invalid_argument, "this cgroup was removed");
  for (const auto& f : procs_files()) {
    if (auto w = internal::write_kernel_file(f, std::to_string(pid)); !w) return w;
  }
  return {};
}

Result<std::vector<pid_t>> Cgroup::pids() const {
  if (hierarchies_.empty()) return std::vector<pid_t>{};
  return list_tree(dir(hierarchies_.front()));
}

std::vector<pid_t> Cgroup::exited_unreaped() const {
  std::vector<pid_t> out;
  if (hierarchies_.empty()) return out;
  const std::string self = ":/" + path_;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    pid_t pid = 0;
    const char* name = e->d_name;
    if (std::from_chars(name, name + std::strlen(name), pid).ec != std::errc() || pid <= 0)
      continue;
    const auto st = internal::read_proc_stat(pid);
    if (!st || st->state != 'Z') continue;
    auto cgroups = internal::read_kernel_file(fmt::format("/proc/{}/cgroup", pid));
    if (!cgroups) continue;
    // Lines "ID:CONTROLLERS:/path": ours, or one of our descendants.
    for (std::size_t at = 0; (at = cgroups->find(self, at)) != std::string::npos; ++at) {
      const char next = at + self.size() < cgroups->size() ? (*cgroups)[at + self.size()] : '\n';
      if (next == '\n' || next == '/') {
        out.push_back(pid);
        break;
      }
    }
  }
  closedir(d);
  return out;
}

Result<void> Cgroup::set_cpus(std::string_view cpus) const {
  for (const auto& h : hierarchies_) {
    if (h.cpuset) return internal::write_kernel_file(dir(h) + "/cpuset.cpus", cpus);
  }
  return make_error(Errc::invalid_argument,
                    fmt::format("cgroup {} was created without the cpuset controller", path_));
}

Result<void> Cgroup::set_mems(std::string_view mems) const {
  for (const auto& h : hierarchies_) {
    if (h.cpuset) return internal::write_kernel_file(dir(h) + "/cpuset.mems", mems);
  }
  return make_error(Errc::invalid_argument,
                    fmt::format("cgroup {} was created without the cpuset controller", path_));
}

Result<void> Cgroup::set_cpu_weight(unsigned weight) const {
  if (weight < 1 || weight > 10000) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("cpu weight {} is outside 1..10000 (100 is the default)", weight));
  }
  for (const auto& h : hierarchies_) {
    if (!h.cpu) continue;
    if (h.version == 2)
      return internal::write_kernel_file(dir(h) + "/cpu.weight", std::to_string(weight));
    // v1 shares are relative like v2 weights; 1024 is v1's default as 100 is v2's.
    const unsigned long shares = std::max<unsigned long>(2, weight * 1024UL / 100);
    return internal::write_kernel_file(dir(h) + "/cpu.shares", std::to_string(shares));
  }
  return make_error(Errc::invalid_argument,
                    fmt::format("cgroup {} was created without the cpu controller", path_));
}

Result<std::vector<pid_t>> Cgroup::kill(milliseconds timeout) const {
  if (hierarchies_.empty()) return std::vector<pid_t>{};
  const auto deadline = Clock::now() + timeout;
  const Hierarchy& t = hierarchies_.front();
  const std::string d = dir(t);
  const bool v2 = t.version == 2;
  const bool can_freeze = v2 ? exists(d + "/cgroup.freeze") : t.freezer;
  const std::string freeze_file = d + (v2 ? "/cgroup.freeze" : "/freezer.state");
  const auto freeze = [&](bool on) {
    return internal::write_kernel_file(freeze_file,
                                       v2 ? (on ? "1" : "0") : (on ? "FROZEN" : "THAWED"));
  };
  std::vector<pid_t> killed;
  const auto still_there = [&](std::size_t n) {
    return make_error(
        Errc::busy,
        fmt::format("cgroup {} still holds {} after {} ms of SIGKILL: probably stuck "
                    "in the kernel (D state); see /proc/<pid>/stack",
                    d, n == 0 ? std::string("dying processes") : fmt::format("{} process(es)", n),
                    timeout.count()));
  };
  if (v2 && exists(d + "/cgroup.kill")) {
    // Frozen, the member list is complete: nothing forks between listing and the kill.
    if (can_freeze) {
      if (auto f = freeze(true); !f) return tl::unexpected(f.error());
      milliseconds step(1);
      const auto freeze_end = Clock::now() + timeout / 2;
      while (!event_set(d, "frozen") && Clock::now() < freeze_end) sleep_step(step, freeze_end);
    }
    auto members = list_tree(d);
    auto k = internal::write_kernel_file(d + "/cgroup.kill", "1");
    milliseconds step(1);
    while (k && event_set(d, "populated") && Clock::now() < deadline) sleep_step(step, deadline);
    // Thawed again on every path, so a process that joins later is not frozen on arrival.
    auto thawed = can_freeze ? freeze(false) : Result<void>{};
    if (!members) return tl::unexpected(members.error());
    if (!k) return tl::unexpected(k.error());
    if (!thawed) return tl::unexpected(thawed.error());
    if (event_set(d, "populated")) return still_there(0);
    return std::move(*members);
  }
  // No cgroup.kill: freeze (where possible), SIGKILL what is listed, thaw, until empty.
  milliseconds step(1);
  for (;;) {
    if (can_freeze) (void)freeze(true);
    auto members = list_tree(d);
    if (members) {
      for (pid_t pid : *members) ::kill(pid, SIGKILL);
    }
    if (can_freeze) (void)freeze(false);  // frozen v1 tasks die only once thawed
    if (!members) return tl::unexpected(members.error());
    if (members->empty()) return killed;
    for (pid_t pid : *members) {
      if (std::find(killed.begin(), killed.end(), pid) == killed.end()) killed.push_back(pid);
    }
    if (Clock::now() >= deadline) return still_there(members->size());
    sleep_step(step, deadline);
  }
}

Result<void> Cgroup::remove(milliseconds timeout) {
  if (hierarchies_.empty()) return {};
  const auto deadline = Clock::now() + timeout;
  if (auto k = kill(timeout); !k) return tl::unexpected(k.error());
  for (const auto& h : hierarchies_) {
    if (auto r = remove_tree(dir(h), deadline); !r) return r;
  }
  // Parents go only when left empty; a sibling run keeps them (EBUSY, ENOTEMPTY).
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) rmdir(it->c_str());
  if (prune_parent_) {
    const std::string parent = parent_of(path_);
    for (const auto& h : hierarchies_) {
      if (!parent.empty()) rmdir((h.mount + "/" + parent).c_str());
    }
  }
  hierarchies_.clear();
  created_.clear();
  return {};
}

Result<std::size_t> remove_stale_cgroup_runs(const CgroupLayout& layout, std::string_view parent,
                                             milliseconds timeout) {
  if (auto ok = check_path(parent); !ok) return tl::unexpected(ok.error());
  const unsigned long long ns = my_pidns();
  std::set<std::string> removed;
  std::vector<const CgroupMount*> mounts;
  for (const auto& m : layout.mounts) mounts.push_back(&m);
  // The v2 tree first: its cgroup.kill ends a run's processes in one step.
  std::stable_sort(mounts.begin(), mounts.end(), [](const CgroupMount* a, const CgroupMount* b) {
    return a->version > b->version;
  });
  for (const CgroupMount* m : mounts) {
    if (!is_cgroup_fs(m->mount_point)) continue;
    for (const auto& run_dir : child_dirs(m->mount_point + "/" + std::string(parent))) {
      const std::string name = run_dir.substr(run_dir.rfind('/') + 1);
      const auto owner = parse_run_name(name);
      if (!owner || owner->pidns != ns) continue;
      const auto st = internal::read_proc_stat(owner->pid);
      if (st && st->start_ticks == owner->start_ticks && st->state != 'Z') continue;  // alive
      Cgroup stale;
      stale.path_ = fmt::format("{}/{}", parent, name);
      const bool freezer = std::find(m->controllers.begin(), m->controllers.end(), "freezer") !=
                           m->controllers.end();
      stale.hierarchies_.push_back(Cgroup::Hierarchy{
          .mount = m->mount_point, .version = m->version, .tracker = true, .freezer = freezer});
      stale.prune_parent_ = true;
      if (auto r = stale.remove(timeout); !r) {
        return make_error(r.error().code,
                          fmt::format("removing the stale cgroup {} of dead process {}: {}",
                                      run_dir, owner->pid, r.error().message));
      }
      removed.insert(name);
    }
  }
  return removed.size();
}

Result<unsigned> weigh_cgroup_runs(const CgroupLayout& layout, std::string_view parent) {
  if (auto ok = check_path(parent); !ok) return tl::unexpected(ok.error());
  const CgroupMount* m = layout.for_controller("cpu");
  if (m == nullptr) return 0u;
  const std::string dir = m->mount_point + "/" + std::string(parent);
  internal::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return 0u;  // no runs left: the parent went with the last one
    return os_error("open " + dir, errno);
  }
  // Concurrent runs recompute under one lock, so the last writer saw every run.
  const auto deadline = Clock::now() + milliseconds(2000);
  milliseconds step(1);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return os_error("flock " + dir, errno);
    }
    if (Clock::now() >= deadline) {
      return make_error(Errc::busy, fmt::format("{} stayed locked by another run for 2 s", dir));
    }
    sleep_step(step, deadline);
  }
  const std::string file = m->version == 2 ? "cpu.weight" : "cpu.shares";
  const unsigned long unit = m->version == 2 ? 100 : 1024;  // one nice-0 task
  unsigned long total = 0;
  for (const auto& child : child_dirs(dir)) {
    auto text = internal::read_kernel_file(child + "/" + file);
    if (!text) continue;  // gone meanwhile, or the controller is not enabled there
    total += std::strtoul(text->c_str(), nullptr, 10);
  }
  if (total == 0) total = unit;
  total =
      std::clamp<unsigned long>(total, m->version == 2 ? 1 : 2, m->version == 2 ? 10000 : 262144);
  if (auto w = internal::write_kernel_file(dir + "/" + file, std::to_string(total)); !w) {
    return tl::unexpected(w.error());
  }
  return static_cast<unsigned>(total * 100 / unit);
}

}  // namespace scxkit
