// Work type names, step descriptions and the cross-field validation of a scenario.
#include "scxkit/scenario.hpp"

#include <array>
#include <map>
#include <set>

#include <fmt/format.h>

namespace scxkit {

namespace {

constexpr std::array<std::pair<WorkType, std::string_view>, 9> kWorkNames{{
    {WorkType::spin, "spin"},
    {WorkType::yield, "yield"},
    {WorkType::bursty, "bursty"},
    {WorkType::pipe_pingpong, "pipe-pingpong"},
    {WorkType::futex_pingpong, "futex-pingpong"},
    {WorkType::io_sleep, "io-sleep"},
    {WorkType::fork_churn, "fork-churn"},
    {WorkType::mutex, "mutex"},
    {WorkType::page_fault, "page-fault"},
}};

bool good_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

Result<void> fail(std::string field, std::string what) {
  return make_error(Errc::invalid_argument, fmt::format("{}: {}", field, what));
}

Result<void> check_cpus(const std::string& field, const CpuSet& cpus, const CpuSet& host) {
  if (cpus.empty()) return fail(field, "empty CPU list; name at least one CPU");
  if (!cpus.subset_of(host)) {
    return fail(field, fmt::format("CPUs {} are not available here (this host: {})",
                                   cpus.minus(host).to_string(), host.to_string()));
  }
  return {};
}

// When each cgroup exists: [from, until).
struct Lifetime {
  Millis from{0}, until{Millis::max()};
};

}  // namespace

std::string_view to_string(WorkType t) {
  for (const auto& [type, name] : kWorkNames) {
    if (type == t) return name;
  }
  return "?";
}

Result<WorkType> parse_work_type(std::string_view name) {
  std::string known;
  for (const auto& [type, n] : kWorkNames) {
    if (n == name) return type;
    known += known.empty() ? "" : ", ";
    known += n;
  }
  return make_error(Errc::invalid_argument,
                    fmt::format("unknown work type '{}' (known: {})", name, known));
}

bool cpu_hungry(WorkType t) {
  return t == WorkType::spin || t == WorkType::page_fault || t == WorkType::fork_churn;
}

std::string describe(const StepAction& a) {
  struct Describe {
    std::string operator()(const SetCpus& s) const {
      return fmt::format("cgroup {} cpus -> {}", s.cgroup, s.cpus.to_string());
    }
    std::string operator()(const SwapCpus& s) const {
      return fmt::format("swap cpus of {} and {}", s.a, s.b);
    }
    std::string operator()(const AddCgroup& s) const {
      return fmt::format("add cgroup {}", s.cgroup.name);
    }
    std::string operator()(const RemoveCgroup& s) const {
      return fmt::format("remove cgroup {}", s.cgroup);
    }
    std::string operator()(const MoveWorkers& s) const {
      return fmt::format("move {} to cgroup {}", s.worker,
                         s.to_cgroup.empty() ? "(root)" : s.to_cgroup);
    }
    std::string operator()(const SetAffinity& s) const {
      return fmt::format("affinity of {} -> {}", s.worker, s.cpus ? s.cpus->to_string() : "all");
    }
    std::string operator()(const SetNice& s) const {
      return fmt::format("nice of {} -> {}", s.worker, s.nice);
    }
    std::string operator()(const SpawnWorkers& s) const {
      return fmt::format("spawn {} x{} ({})", s.worker.name, s.worker.count,
                         to_string(s.worker.work));
    }
    std::string operator()(const StopWorkers& s) const { return fmt::format("stop {}", s.worker); }
  };
  return std::visit(Describe{}, a);
}

Result<void> validate(const Scenario& s, const CpuSet& host) {
  if (!good_name(s.name)) {
    return fail("name", fmt::format("'{}' must be 1-64 letters, digits, '-' or '_'", s.name));
  }
  if (s.duration < Millis(100) || s.duration > Millis(3'600'000)) {
    return fail("duration_ms", "must be between 100 and 3600000");
  }
  std::map<std::string, Lifetime> cgroups{{"", {}}};
  auto check_cgroup = [&](const CgroupSpec& c, const std::string& field) -> Result<void> {
    if (!good_name(c.name) || c.name[0] == '_') {
      return fail(field + ".name",
                  fmt::format("'{}' must be 1-64 letters, digits, '-' or '_', not starting with "
                              "'_' (those names are the runner's)",
                              c.name));
    }
    if (c.cpus) {
      if (auto ok = check_cpus(field + ".cpus", *c.cpus, host); !ok) return ok;
    }
    if (c.weight && (*c.weight < 1 || *c.weight > 10000)) {
      return fail(field + ".weight", fmt::format("{} is outside 1..10000", *c.weight));
    }
    return {};
  };
  for (std::size_t i = 0; i < s.cgroups.size(); ++i) {
    const std::string field = fmt::format("cgroups[{}]", i);
    if (auto ok = check_cgroup(s.cgroups[i], field); !ok) return ok;
    if (!cgroups.emplace(s.cgroups[i].name, Lifetime{}).second) {
      return fail(field + ".name", fmt::format("'{}' is declared twice", s.cgroups[i].name));
    }
  }
  // Cgroups added and removed by steps bound when workers may sit in them.
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    const std::string field = fmt::format("steps[{}]", i);
    if (const auto* add = std::get_if<AddCgroup>(&s.steps[i].action)) {
      if (auto ok = check_cgroup(add->cgroup, field + ".cgroup"); !ok) return ok;
      if (!cgroups.emplace(add->cgroup.name, Lifetime{s.steps[i].at, Millis::max()}).second) {
        return fail(field + ".cgroup.name", fmt::format("'{}' exists already", add->cgroup.name));
      }
    }
  }
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    if (const auto* rm = std::get_if<RemoveCgroup>(&s.steps[i].action)) {
      auto it = cgroups.find(rm->cgroup);
      if (it == cgroups.end() || rm->cgroup.empty()) {
        return fail(fmt::format("steps[{}].cgroup", i),
                    fmt::format("no cgroup '{}' to remove", rm->cgroup));
      }
      it->second.until = std::min(it->second.until, s.steps[i].at);
    }
  }
  auto cgroup_live = [&](const std::string& name, Millis at, const std::string& field,
                         bool may_be_root) -> Result<void> {
    auto it = cgroups.find(name);
    if (it == cgroups.end() || (!may_be_root && name.empty())) {
      return fail(field, fmt::format("no cgroup '{}' (declare it under \"cgroups\")", name));
    }
    if (at < it->second.from || at >= it->second.until) {
      return fail(field, fmt::format("cgroup '{}' does not exist at {} ms", name, at.count()));
    }
    return {};
  };
  std::set<std::string> workers;
  auto check_worker = [&](const WorkerSpec& w, const std::string& field) -> Result<void> {
    if (!good_name(w.name)) {
      return fail(field + ".name",
                  fmt::format("'{}' must be 1-64 letters, digits, '-' or '_'", w.name));
    }
    if (!workers.insert(w.name).second) {
      return fail(field + ".name", fmt::format("'{}' is used twice", w.name));
    }
    if (auto ok = cgroup_live(w.cgroup, w.start, field + ".cgroup", true); !ok) return ok;
    if (w.count < 1 || w.count > 256) return fail(field + ".count", "must be 1..256");
    if (w.nice < -20 || w.nice > 19) return fail(field + ".nice", "must be -20..19");
    if (w.affinity) {
      if (auto ok = check_cpus(field + ".affinity", *w.affinity, host); !ok) return ok;
    }
    if (w.rt_priority < 0 || w.rt_priority > 99) {
      return fail(field + ".rt_priority", "must be 0..99 (0: not real-time)");
    }
    if (w.rt_priority > 0 && (!w.affinity || w.affinity->count() >= host.count())) {
      return fail(field + ".affinity",
                  "a real-time worker must be pinned to fewer CPUs than the host has, so other "
                  "tasks keep a CPU");
    }
    if (w.threads < 0 || w.threads > 64) return fail(field + ".threads", "must be 0..64");
    if (w.sleep < Millis(0) || w.sleep > Millis(10'000)) {
      return fail(field + ".sleep_ms", "must be 0..10000");
    }
    if (w.burst < Millis(0) || w.burst > Millis(10'000)) {
      return fail(field + ".burst_ms", "must be 0..10000");
    }
    if (w.start < Millis(0) || w.start >= s.duration) {
      return fail(field + ".start_ms", "must be inside the scenario's duration");
    }
    if (w.stop && (*w.stop <= w.start || *w.stop > s.duration)) {
      return fail(field + ".stop_ms", "must be after start_ms and at most the duration");
    }
    return {};
  };
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    if (auto ok = check_worker(s.workers[i], fmt::format("workers[{}]", i)); !ok) return ok;
  }
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    if (const auto* sp = std::get_if<SpawnWorkers>(&s.steps[i].action)) {
      WorkerSpec w = sp->worker;
      w.start = s.steps[i].at;
      if (auto ok = check_worker(w, fmt::format("steps[{}].worker", i)); !ok) return ok;
    }
  }
  if (workers.empty()) return fail("workers", "a scenario needs at least one worker");
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    const std::string field = fmt::format("steps[{}]", i);
    if (st.at < Millis(0) || st.at >= s.duration) {
      return fail(field + ".at_ms", "must be inside the scenario's duration");
    }
    auto known_worker = [&](const std::string& w) -> Result<void> {
      if (workers.count(w) == 0) {
        return fail(field + ".worker", fmt::format("no worker '{}' in this scenario", w));
      }
      return {};
    };
    Result<void> ok;
    if (const auto* a = std::get_if<SetCpus>(&st.action)) {
      ok = cgroup_live(a->cgroup, st.at, field + ".cgroup", false);
      if (ok) ok = check_cpus(field + ".cpus", a->cpus, host);
    } else if (const auto* b = std::get_if<SwapCpus>(&st.action)) {
      ok = cgroup_live(b->a, st.at, field + ".a", false);
      if (ok) ok = cgroup_live(b->b, st.at, field + ".b", false);
    } else if (const auto* m = std::get_if<MoveWorkers>(&st.action)) {
      ok = known_worker(m->worker);
      if (ok) ok = cgroup_live(m->to_cgroup, st.at, field + ".to_cgroup", true);
    } else if (const auto* f = std::get_if<SetAffinity>(&st.action)) {
      ok = known_worker(f->worker);
      if (ok && f->cpus) ok = check_cpus(field + ".cpus", *f->cpus, host);
    } else if (const auto* n = std::get_if<SetNice>(&st.action)) {
      ok = known_worker(n->worker);
      if (ok && (n->nice < -20 || n->nice > 19)) ok = fail(field + ".nice", "must be -20..19");
    } else if (const auto* x = std::get_if<StopWorkers>(&st.action)) {
      ok = known_worker(x->worker);
    }
    if (!ok) return ok;
  }
  const Thresholds& t = s.thresholds;
  if (t.min_fair_share < 0 || t.min_fair_share > 1) {
    return fail("thresholds.min_fair_share", "must be 0..1");
  }
  if (t.min_cpu_share < 0 || t.min_cpu_share > 1) {
    return fail("thresholds.min_cpu_share", "must be 0..1");
  }
  if (t.max_spread < 0 || t.max_spread > 1) return fail("thresholds.max_spread", "must be 0..1");
  if (t.max_gap <= Millis(0)) return fail("thresholds.max_gap_ms", "must be positive");
  if (t.max_wake_p99_us <= 0) return fail("thresholds.max_wake_p99_us", "must be positive");
  return {};
}

Scenario scale_times(Scenario s, double factor) {
  auto scale = [factor](Millis m) {
    return Millis(static_cast<Millis::rep>(static_cast<double>(m.count()) * factor));
  };
  s.duration = scale(s.duration);
  for (auto& w : s.workers) {
    w.start = scale(w.start);
    if (w.stop) w.stop = scale(*w.stop);
  }
  for (auto& st : s.steps) st.at = scale(st.at);
  return s;
}

}  // namespace scxkit
