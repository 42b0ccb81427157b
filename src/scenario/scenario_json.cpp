// Strict JSON reading of scenarios: every field is type-checked, unknown
// fields are errors, and each error names the field's path.
#include "scenario/scenario_json.hpp"

#include <set>

#include <fmt/format.h>

#include "common/text_file.hpp"

namespace scxkit::internal {

namespace {

using nlohmann::json;

std::string join(const std::string& where, std::string_view field) {
  return where.empty() ? std::string(field) : fmt::format("{}.{}", where, field);
}

// Reads one JSON object's fields, remembering which were used, so leftovers
// can be reported as unknown.
class Fields {
 public:
  static Result<Fields> of(const json& j, std::string where) {
    if (!j.is_object()) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}: expected an object", where.empty() ? "(top)" : where));
    }
    return Fields(j, std::move(where));
  }

  bool has(const char* key) const { return j_->contains(key); }
  const std::string& where() const { return where_; }
  std::string path(const char* key) const { return join(where_, key); }

  Result<std::string> str(const char* key, std::optional<std::string> fallback = std::nullopt) {
    used_.insert(key);
    if (!has(key)) return missing<std::string>(key, fallback);
    if (!(*j_)[key].is_string()) return type_error(key, "a string");
    return (*j_)[key].get<std::string>();
  }
  Result<long long> integer(const char* key, std::optional<long long> fallback = std::nullopt) {
    used_.insert(key);
    if (!has(key)) return missing<long long>(key, fallback);
    if (!(*j_)[key].is_number_integer()) return type_error(key, "an integer");
    return (*j_)[key].get<long long>();
  }
  Result<double> number(const char* key, double fallback) {
    used_.insert(key);
    if (!has(key)) return fallback;
    if (!(*j_)[key].is_number()) return type_error(key, "a number");
    return (*j_)[key].get<double>();
  }
  Result<std::optional<CpuSet>> cpus(const char* key) {
    used_.insert(key);
    if (!has(key) || (*j_)[key].is_null()) return std::optional<CpuSet>{};
    if (!(*j_)[key].is_string()) return type_error(key, "a CPU list string such as \"0-1\"");
    auto set = CpuSet::parse((*j_)[key].get<std::string>());
    if (!set) return make_error(Errc::invalid_argument, path(key) + ": " + set.error().message);
    return std::optional<CpuSet>(*set);
  }
  Result<const json*> array(const char* key) {
    used_.insert(key);
    static const json empty = json::array();
    if (!has(key)) return &empty;
    if (!(*j_)[key].is_array()) return type_error(key, "an array");
    return &(*j_)[key];
  }
  Result<const json*> object(const char* key) {
    used_.insert(key);
    static const json empty = json::object();
    if (!has(key)) return &empty;
    if (!(*j_)[key].is_object()) return type_error(key, "an object");
    return &(*j_)[key];
  }
  // Fails on the first field nobody asked for.
  Result<void> no_unknown() const {
    for (const auto& [key, _] : j_->items()) {
      if (used_.count(key) == 0) {
        return make_error(Errc::invalid_argument,
                          fmt::format("{}: unknown field (see docs/RUN.md)", join(where_, key)));
      }
    }
    return {};
  }

 private:
  Fields(const json& j, std::string where) : j_(&j), where_(std::move(where)) {}
  template <class T>
  Result<T> missing(const char* key, const std::optional<T>& fallback) const {
    if (fallback) return *fallback;
    return make_error(Errc::invalid_argument, fmt::format("{}: required field missing", path(key)));
  }
  tl::unexpected<Error> type_error(const char* key, std::string_view expected) const {
    return make_error(Errc::invalid_argument, fmt::format("{}: expected {}, got {}", path(key),
                                                          expected, (*j_)[key].type_name()));
  }
  const json* j_;
  std::string where_;
  std::set<std::string> used_;
};

#define SCX_TRY(var, expr)                              \
  auto var##_r = (expr);                                \
  if (!var##_r) return tl::unexpected(var##_r.error()); \
  auto var = std::move(*var##_r)

Result<CgroupSpec> cgroup_from(const json& j, const std::string& where) {
  SCX_TRY(f, Fields::of(j, where));
  CgroupSpec c;
  SCX_TRY(name, f.str("name"));
  SCX_TRY(cpus, f.cpus("cpus"));
  c.name = name;
  c.cpus = cpus;
  if (f.has("weight")) {
    SCX_TRY(weight, f.integer("weight"));
    c.weight = static_cast<int>(weight);
  }
  if (auto ok = f.no_unknown(); !ok) return tl::unexpected(ok.error());
  return c;
}

Result<WorkerSpec> worker_from(const json& j, const std::string& where, bool timed) {
  SCX_TRY(f, Fields::of(j, where));
  WorkerSpec w;
  SCX_TRY(name, f.str("name"));
  SCX_TRY(cgroup, f.str("cgroup", ""));
  SCX_TRY(work, f.str("work"));
  auto type = parse_work_type(work);
  if (!type)
    return make_error(Errc::invalid_argument, f.path("work") + ": " + type.error().message);
  SCX_TRY(count, f.integer("count", 1));
  SCX_TRY(nice, f.integer("nice", 0));
  SCX_TRY(affinity, f.cpus("affinity"));
  SCX_TRY(rt, f.integer("rt_priority", 0));
  SCX_TRY(threads, f.integer("threads", 0));
  SCX_TRY(sleep, f.integer("sleep_ms", 1));
  SCX_TRY(burst, f.integer("burst_ms", 1));
  w.name = name;
  w.cgroup = cgroup;
  w.work = *type;
  w.count = static_cast<int>(count);
  w.nice = static_cast<int>(nice);
  w.affinity = affinity;
  w.rt_priority = static_cast<int>(rt);
  w.threads = static_cast<int>(threads);
  w.sleep = Millis(sleep);
  w.burst = Millis(burst);
  if (timed) {
    SCX_TRY(start, f.integer("start_ms", 0));
    w.start = Millis(start);
    if (f.has("stop_ms")) {
      SCX_TRY(stop, f.integer("stop_ms"));
      w.stop = Millis(stop);
    }
  }
  if (auto ok = f.no_unknown(); !ok) return tl::unexpected(ok.error());
  return w;
}

Result<Step> step_from(const json& j, const std::string& where) {
  SCX_TRY(f, Fields::of(j, where));
  Step st;
  SCX_TRY(at, f.integer("at_ms"));
  st.at = Millis(at);
  SCX_TRY(action, f.str("action"));
  if (action == "set_cpus") {
    SCX_TRY(cgroup, f.str("cgroup"));
    SCX_TRY(cpus, f.cpus("cpus"));
    if (!cpus)
      return make_error(Errc::invalid_argument, f.path("cpus") + ": required field missing");
    st.action = SetCpus{cgroup, *cpus};
  } else if (action == "swap_cpus") {
    SCX_TRY(a, f.str("a"));
    SCX_TRY(b, f.str("b"));
    st.action = SwapCpus{a, b};
  } else if (action == "add_cgroup") {
    SCX_TRY(obj, f.object("cgroup"));
    SCX_TRY(c, cgroup_from(*obj, f.path("cgroup")));
    st.action = AddCgroup{c};
  } else if (action == "remove_cgroup") {
    SCX_TRY(cgroup, f.str("cgroup"));
    st.action = RemoveCgroup{cgroup};
  } else if (action == "move") {
    SCX_TRY(worker, f.str("worker"));
    SCX_TRY(to, f.str("to_cgroup", ""));
    st.action = MoveWorkers{worker, to};
  } else if (action == "set_affinity") {
    SCX_TRY(worker, f.str("worker"));
    SCX_TRY(cpus, f.cpus("cpus"));
    st.action = SetAffinity{worker, cpus};
  } else if (action == "set_nice") {
    SCX_TRY(worker, f.str("worker"));
    SCX_TRY(nice, f.integer("nice"));
    st.action = SetNice{worker, static_cast<int>(nice)};
  } else if (action == "spawn") {
    SCX_TRY(obj, f.object("worker"));
    SCX_TRY(w, worker_from(*obj, f.path("worker"), false));
    st.action = SpawnWorkers{w};
  } else if (action == "stop") {
    SCX_TRY(worker, f.str("worker"));
    st.action = StopWorkers{worker};
  } else {
    return make_error(Errc::invalid_argument,
                      fmt::format("{}: unknown action '{}' (set_cpus, swap_cpus, add_cgroup, "
                                  "remove_cgroup, move, set_affinity, set_nice, spawn, stop)",
                                  f.path("action"), action));
  }
  if (auto ok = f.no_unknown(); !ok) return tl::unexpected(ok.error());
  return st;
}

constexpr std::string_view kChecks[] = {"starvation", "fairness",     "stuck",
                                        "isolation",  "wake_latency", "kernel"};

Result<Thresholds> thresholds_from(const json& j, const std::string& where) {
  SCX_TRY(f, Fields::of(j, where));
  Thresholds t;
  SCX_TRY(fair, f.number("min_fair_share", t.min_fair_share));
  SCX_TRY(share, f.number("min_cpu_share", t.min_cpu_share));
  SCX_TRY(spread, f.number("max_spread", t.max_spread));
  SCX_TRY(gap, f.integer("max_gap_ms", t.max_gap.count()));
  SCX_TRY(p99, f.number("max_wake_p99_us", t.max_wake_p99_us));
  t.min_fair_share = fair;
  t.min_cpu_share = share;
  t.max_spread = spread;
  t.max_gap = Millis(gap);
  t.max_wake_p99_us = p99;
  SCX_TRY(patterns, f.array("kernel_patterns"));
  for (std::size_t i = 0; i < patterns->size(); ++i) {
    if (!(*patterns)[i].is_string()) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}[{}]: expected a string", f.path("kernel_patterns"), i));
    }
    t.kernel_patterns.push_back((*patterns)[i].get<std::string>());
  }
  SCX_TRY(off, f.array("off"));
  for (std::size_t i = 0; i < off->size(); ++i) {
    const std::string field = fmt::format("{}[{}]", f.path("off"), i);
    const std::string name = (*off)[i].is_string() ? (*off)[i].get<std::string>() : "";
    bool* flag = name == "starvation"     ? &t.starvation
                 : name == "fairness"     ? &t.fairness
                 : name == "stuck"        ? &t.stuck
                 : name == "isolation"    ? &t.isolation
                 : name == "wake_latency" ? &t.wake_latency
                 : name == "kernel"       ? &t.kernel
                                          : nullptr;
    if (flag == nullptr) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{}: expected one of {}", field, fmt::join(kChecks, ", ")));
    }
    *flag = false;
  }
  if (auto ok = f.no_unknown(); !ok) return tl::unexpected(ok.error());
  return t;
}

json cpus_json(const std::optional<CpuSet>& c) {
  return c ? json(c->to_string()) : json(nullptr);
}

json worker_json(const WorkerSpec& w, bool timed) {
  json j = {{"name", w.name},
            {"cgroup", w.cgroup},
            {"work", to_string(w.work)},
            {"count", w.count},
            {"nice", w.nice},
            {"affinity", cpus_json(w.affinity)},
            {"rt_priority", w.rt_priority},
            {"threads", w.threads},
            {"sleep_ms", w.sleep.count()},
            {"burst_ms", w.burst.count()}};
  if (timed) {
    j["start_ms"] = w.start.count();
    if (w.stop) j["stop_ms"] = w.stop->count();
  }
  return j;
}

json cgroup_json(const CgroupSpec& c) {
  json j = {{"name", c.name}, {"cpus", cpus_json(c.cpus)}};
  if (c.weight) j["weight"] = *c.weight;
  return j;
}

json step_json(const Step& st) {
  json j = {{"at_ms", st.at.count()}};
  struct Fill {
    json& j;
    void operator()(const SetCpus& a) {
      j.update({{"action", "set_cpus"}, {"cgroup", a.cgroup}, {"cpus", a.cpus.to_string()}});
    }
    void operator()(const SwapCpus& a) {
      j.update({{"action", "swap_cpus"}, {"a", a.a}, {"b", a.b}});
    }
    void operator()(const AddCgroup& a) {
      j.update({{"action", "add_cgroup"}, {"cgroup", cgroup_json(a.cgroup)}});
    }
    void operator()(const RemoveCgroup& a) {
      j.update({{"action", "remove_cgroup"}, {"cgroup", a.cgroup}});
    }
    void operator()(const MoveWorkers& a) {
      j.update({{"action", "move"}, {"worker", a.worker}, {"to_cgroup", a.to_cgroup}});
    }
    void operator()(const SetAffinity& a) {
      j.update({{"action", "set_affinity"}, {"worker", a.worker}, {"cpus", cpus_json(a.cpus)}});
    }
    void operator()(const SetNice& a) {
      j.update({{"action", "set_nice"}, {"worker", a.worker}, {"nice", a.nice}});
    }
    void operator()(const SpawnWorkers& a) {
      j.update({{"action", "spawn"}, {"worker", worker_json(a.worker, false)}});
    }
    void operator()(const StopWorkers& a) { j.update({{"action", "stop"}, {"worker", a.worker}}); }
  };
  std::visit(Fill{j}, st.action);
  return j;
}

}  // namespace

json scenario_to_json(const Scenario& s) {
  json cgroups = json::array(), workers = json::array(), steps = json::array();
  for (const auto& c : s.cgroups) cgroups.push_back(cgroup_json(c));
  for (const auto& w : s.workers) workers.push_back(worker_json(w, true));
  for (const auto& st : s.steps) steps.push_back(step_json(st));
  const Thresholds& t = s.thresholds;
  json off = json::array();
  const bool flags[] = {t.starvation, t.fairness, t.stuck, t.isolation, t.wake_latency, t.kernel};
  for (std::size_t i = 0; i < std::size(kChecks); ++i) {
    if (!flags[i]) off.push_back(kChecks[i]);
  }
  return {{"name", s.name},
          {"description", s.description},
          {"duration_ms", s.duration.count()},
          {"cgroups", cgroups},
          {"workers", workers},
          {"steps", steps},
          {"thresholds",
           {{"min_fair_share", t.min_fair_share},
            {"min_cpu_share", t.min_cpu_share},
            {"max_spread", t.max_spread},
            {"max_gap_ms", t.max_gap.count()},
            {"max_wake_p99_us", t.max_wake_p99_us},
            {"kernel_patterns", t.kernel_patterns},
            {"off", off}}}};
}

Result<Scenario> scenario_from_json(const json& j, const std::string& where) {
  SCX_TRY(f, Fields::of(j, where));
  Scenario s;
  SCX_TRY(name, f.str("name"));
  SCX_TRY(description, f.str("description", ""));
  SCX_TRY(duration, f.integer("duration_ms", s.duration.count()));
  s.name = name;
  s.description = description;
  s.duration = Millis(duration);
  SCX_TRY(cgroups, f.array("cgroups"));
  for (std::size_t i = 0; i < cgroups->size(); ++i) {
    SCX_TRY(c, cgroup_from((*cgroups)[i], fmt::format("{}[{}]", f.path("cgroups"), i)));
    s.cgroups.push_back(std::move(c));
  }
  SCX_TRY(workers, f.array("workers"));
  for (std::size_t i = 0; i < workers->size(); ++i) {
    SCX_TRY(w, worker_from((*workers)[i], fmt::format("{}[{}]", f.path("workers"), i), true));
    s.workers.push_back(std::move(w));
  }
  SCX_TRY(steps, f.array("steps"));
  for (std::size_t i = 0; i < steps->size(); ++i) {
    SCX_TRY(st, step_from((*steps)[i], fmt::format("{}[{}]", f.path("steps"), i)));
    s.steps.push_back(std::move(st));
  }
  SCX_TRY(th, f.object("thresholds"));
  SCX_TRY(t, thresholds_from(*th, f.path("thresholds")));
  s.thresholds = std::move(t);
  if (auto ok = f.no_unknown(); !ok) return tl::unexpected(ok.error());
  return s;
}

}  // namespace scxkit::internal

namespace scxkit {

Result<std::vector<Scenario>> parse_scenarios(std::string_view json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded()) {
    return make_error(Errc::invalid_argument, "not valid JSON (check brackets, commas and quotes)");
  }
  std::vector<Scenario> out;
  if (j.is_object() && j.contains("scenarios")) {
    if (!j["scenarios"].is_array() || j.size() != 1) {
      return make_error(Errc::invalid_argument,
                        "scenarios: expected {\"scenarios\": [...]} and nothing else beside it");
    }
    for (std::size_t i = 0; i < j["scenarios"].size(); ++i) {
      auto s = internal::scenario_from_json(j["scenarios"][i], fmt::format("scenarios[{}]", i));
      if (!s) return tl::unexpected(s.error());
      out.push_back(std::move(*s));
    }
  } else {
    auto s = internal::scenario_from_json(j, "");
    if (!s) return tl::unexpected(s.error());
    out.push_back(std::move(*s));
  }
  return out;
}

Result<std::vector<Scenario>> load_scenarios(const std::string& path) {
  auto text = internal::read_text_file(path, "scenario file");
  if (!text) return tl::unexpected(text.error());
  auto parsed = parse_scenarios(*text);
  if (!parsed) {
    return make_error(Errc::invalid_argument, fmt::format("{}: {}", path, parsed.error().message));
  }
  return parsed;
}

}  // namespace scxkit
