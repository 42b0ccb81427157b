// The JSON record of a run: schema "scxkit-run", version 1 (docs/RUN.md).
// Readers refuse other schemas and newer versions with a clear message.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/text_file.hpp"
#include "scenario/scenario_json.hpp"
#include "scxkit/report.hpp"

namespace scxkit {

namespace {

using nlohmann::json;
constexpr const char* kSchema = "scxkit-run";

std::string_view outcome_name(CheckOutcome o) {
  switch (o) {
    case CheckOutcome::pass:
      return "pass";
    case CheckOutcome::fail:
      return "fail";
    case CheckOutcome::skipped:
      return "skipped";
  }
  return "skipped";
}

json worker_json(const WorkerResult& w) {
  json buckets = json::array();
  for (const auto& [us, n] : w.wake.buckets) buckets.push_back({us, n});
  json placements = json::array();
  for (const auto& p : w.placements) {
    placements.push_back({{"from_s", p.from_s},
                          {"allowed", p.allowed.to_string()},
                          {"ran_on", p.ran_on.to_string()}});
  }
  return {{"name", w.name},
          {"spec", w.spec},
          {"cgroup", w.cgroup},
          {"work", to_string(w.work)},
          {"nice", w.nice},
          {"rt_priority", w.rt_priority},
          {"affinity", w.affinity},
          {"start_s", w.start_s},
          {"active_s", w.active_s},
          {"ops", w.ops},
          {"ops_per_s", w.ops_per_s()},
          {"cpu_ns", w.cpu_ns},
          {"cpu_share", w.cpu_share()},
          {"fair_share", w.fair_share},
          {"contention", w.contention},
          {"wait_ns", w.wait_ns},
          {"migrations", w.migrations},
          {"cpu_switches", w.cpu_switches},
          {"ran_on", w.ran_on().to_string()},
          {"max_gap_ms", w.max_gap_ms},
          {"max_gap_at_s", w.max_gap_at_s},
          {"wake",
           {{"count", w.wake.count},
            {"p50_us", w.wake.p50_us},
            {"p99_us", w.wake.p99_us},
            {"max_us", w.wake.max_us},
            {"buckets", buckets}}},
          {"placements", placements},
          {"cpu_share_timeline", w.cpu_share_timeline},
          {"failure", w.failure}};
}

json scenario_json(const ScenarioResult& s) {
  json steps = json::array(), lines = json::array(), checks = json::array(),
       workers = json::array();
  for (const auto& st : s.steps) {
    steps.push_back({{"at_s", st.at_s}, {"what", st.what}, {"error", st.error}});
  }
  for (const auto& l : s.kernel_lines) {
    lines.push_back({{"at_s", l.at_s}, {"kind", l.kind}, {"text", l.text}});
  }
  for (const auto& c : s.checks) {
    checks.push_back({{"name", c.name},
                      {"outcome", outcome_name(c.outcome)},
                      {"summary", c.summary},
                      {"findings", c.findings},
                      {"at_s", c.at_s ? json(*c.at_s) : json(nullptr)}});
  }
  for (const auto& w : s.workers) workers.push_back(worker_json(w));
  return {{"name", s.scenario.name},
          {"passed", s.passed()},
          {"error", s.error},
          {"interrupted", s.interrupted},
          {"elapsed_s", s.elapsed_s},
          {"sample_interval_s", s.sample_interval_s},
          {"scenario", internal::scenario_to_json(s.scenario)},
          {"steps", steps},
          {"kernel_lines", lines},
          {"machine",
           {{"cpus", s.machine.cpus},
            {"samples", s.machine.samples},
            {"runnable", s.machine.runnable},
            {"outside", s.machine.outside},
            {"cpu_busy", s.machine.cpu_busy},
            {"busy", s.machine.busy()}}},
          {"checks", checks},
          {"workers", workers}};
}

// Reading back: the record is ours, so a missing or mistyped field is a
// damaged file, reported with its path.
struct Reader {
  std::string error;
  template <class T>
  T get(const json& j, const char* key, const std::string& where) {
    if (!error.empty()) return T{};
    if (!j.is_object() || !j.contains(key)) {
      error = fmt::format("{}.{}: missing", where, key);
      return T{};
    }
    try {
      return j.at(key).get<T>();
    } catch (const json::exception&) {
      error = fmt::format("{}.{}: has the wrong type", where, key);
      return T{};
    }
  }
  CpuSet cpus(const json& j, const char* key, const std::string& where) {
    auto text = get<std::string>(j, key, where);
    auto set = CpuSet::parse(text);
    if (!set && error.empty()) error = fmt::format("{}.{}: {}", where, key, set.error().message);
    return set ? *set : CpuSet{};
  }
  const json& array(const json& j, const char* key, const std::string& where) {
    static const json empty = json::array();
    if (!error.empty()) return empty;
    if (!j.is_object() || !j.contains(key) || !j.at(key).is_array()) {
      error = fmt::format("{}.{}: missing or not an array", where, key);
      return empty;
    }
    return j.at(key);
  }
};

WorkerResult worker_from(Reader& r, const json& j, const std::string& at) {
  WorkerResult w;
  w.name = r.get<std::string>(j, "name", at);
  w.spec = r.get<std::string>(j, "spec", at);
  w.cgroup = r.get<std::string>(j, "cgroup", at);
  auto work = parse_work_type(r.get<std::string>(j, "work", at));
  if (!work && r.error.empty()) r.error = fmt::format("{}.work: {}", at, work.error().message);
  if (work) w.work = *work;
  w.nice = r.get<int>(j, "nice", at);
  w.rt_priority = r.get<int>(j, "rt_priority", at);
  w.affinity = r.get<std::string>(j, "affinity", at);
  w.start_s = r.get<double>(j, "start_s", at);
  w.active_s = r.get<double>(j, "active_s", at);
  w.ops = r.get<std::uint64_t>(j, "ops", at);
  w.cpu_ns = r.get<std::uint64_t>(j, "cpu_ns", at);
  w.wait_ns = r.get<std::uint64_t>(j, "wait_ns", at);
  w.migrations = r.get<std::uint64_t>(j, "migrations", at);
  w.cpu_switches = r.get<std::uint64_t>(j, "cpu_switches", at);
  w.max_gap_ms = r.get<double>(j, "max_gap_ms", at);
  w.max_gap_at_s = r.get<double>(j, "max_gap_at_s", at);
  const std::string wake_at = at + ".wake";
  const json wake = j.is_object() && j.contains("wake") ? j.at("wake") : json::object();
  w.wake.count = r.get<std::uint64_t>(wake, "count", wake_at);
  w.wake.p50_us = r.get<double>(wake, "p50_us", wake_at);
  w.wake.p99_us = r.get<double>(wake, "p99_us", wake_at);
  w.wake.max_us = r.get<double>(wake, "max_us", wake_at);
  for (const auto& b : r.array(wake, "buckets", wake_at)) {
    if (b.is_array() && b.size() == 2) {
      w.wake.buckets.emplace_back(b[0].get<double>(), b[1].get<std::uint64_t>());
    }
  }
  const auto& placements = r.array(j, "placements", at);
  for (std::size_t i = 0; i < placements.size(); ++i) {
    const std::string pat = fmt::format("{}.placements[{}]", at, i);
    PlacementEpoch p;
    p.from_s = r.get<double>(placements[i], "from_s", pat);
    p.allowed = r.cpus(placements[i], "allowed", pat);
    p.ran_on = r.cpus(placements[i], "ran_on", pat);
    w.placements.push_back(p);
  }
  w.cpu_share_timeline = r.get<std::vector<double>>(j, "cpu_share_timeline", at);
  w.failure = r.get<std::string>(j, "failure", at);
  // Added within version 1: absent from older records.
  w.fair_share = j.value("fair_share", 0.0);
  w.contention = j.value("contention", 0.0);
  return w;
}

Result<ScenarioResult> scenario_from(Reader& r, const json& j, const std::string& at) {
  ScenarioResult s;
  if (!j.is_object() || !j.contains("scenario")) {
    return make_error(Errc::invalid_argument, at + ".scenario: missing");
  }
  auto def = internal::scenario_from_json(j.at("scenario"), at + ".scenario");
  if (!def) return tl::unexpected(def.error());
  s.scenario = std::move(*def);
  s.error = r.get<std::string>(j, "error", at);
  s.interrupted = r.get<bool>(j, "interrupted", at);
  s.elapsed_s = r.get<double>(j, "elapsed_s", at);
  s.sample_interval_s = r.get<double>(j, "sample_interval_s", at);
  if (j.contains("machine") && j.at("machine").is_object()) {  // added within version 1
    const auto& m = j.at("machine");
    s.machine.cpus = m.value("cpus", 0u);
    s.machine.samples = m.value("samples", std::size_t{0});
    s.machine.runnable = m.value("runnable", 0.0);
    s.machine.outside = m.value("outside", 0.0);
    s.machine.cpu_busy = m.value("cpu_busy", std::vector<double>{});
  }
  for (const auto& st : r.array(j, "steps", at)) {
    s.steps.push_back({r.get<double>(st, "at_s", at + ".steps"),
                       r.get<std::string>(st, "what", at + ".steps"),
                       r.get<std::string>(st, "error", at + ".steps")});
  }
  for (const auto& l : r.array(j, "kernel_lines", at)) {
    s.kernel_lines.push_back({r.get<double>(l, "at_s", at + ".kernel_lines"),
                              r.get<std::string>(l, "kind", at + ".kernel_lines"),
                              r.get<std::string>(l, "text", at + ".kernel_lines")});
  }
  for (const auto& c : r.array(j, "checks", at)) {
    CheckResult cr;
    cr.name = r.get<std::string>(c, "name", at + ".checks");
    const auto outcome = r.get<std::string>(c, "outcome", at + ".checks");
    cr.outcome = outcome == "pass"   ? CheckOutcome::pass
                 : outcome == "fail" ? CheckOutcome::fail
                                     : CheckOutcome::skipped;
    cr.summary = r.get<std::string>(c, "summary", at + ".checks");
    cr.findings = r.get<std::vector<std::string>>(c, "findings", at + ".checks");
    if (c.contains("at_s") && c.at("at_s").is_number()) cr.at_s = c.at("at_s").get<double>();
    s.checks.push_back(std::move(cr));
  }
  const auto& workers = r.array(j, "workers", at);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    s.workers.push_back(worker_from(r, workers[i], fmt::format("{}.workers[{}]", at, i)));
  }
  if (!r.error.empty()) return make_error(Errc::invalid_argument, r.error);
  return s;
}

}  // namespace

std::string report_to_json(const RunReport& report) {
  json scenarios = json::array();
  for (const auto& s : report.scenarios) scenarios.push_back(scenario_json(s));
  const json j = {{"schema", kSchema},
                  {"schema_version", RunReport::kSchemaVersion},
                  {"started_at", report.started_at},
                  {"host", report.host},
                  {"kernel", report.kernel},
                  {"scheduler", report.scheduler},
                  {"cgroup_layout", report.cgroup_layout},
                  {"passed", report.passed()},
                  {"interrupted", report.interrupted},
                  {"not_run", report.not_run},
                  {"scenarios", scenarios}};
  return j.dump(1) + "\n";
}

Result<RunReport> report_from_json(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::invalid_argument, "not a JSON object (is this an scxkit run report?)");
  }
  if (!j.contains("schema") || j["schema"] != kSchema) {
    return make_error(Errc::invalid_argument,
                      "not an scxkit run report (its \"schema\" is not \"scxkit-run\")");
  }
  if (!j.contains("schema_version") || !j["schema_version"].is_number_integer()) {
    return make_error(Errc::invalid_argument, "schema_version: missing");
  }
  const int version = j["schema_version"].get<int>();
  if (version > RunReport::kSchemaVersion || version < 1) {
    return make_error(Errc::unsupported,
                      fmt::format("report schema version {} is not one this scxkit reads (it "
                                  "reads 1..{}); use the scxkit that wrote it",
                                  version, RunReport::kSchemaVersion));
  }
  Reader r;
  RunReport report;
  report.started_at = r.get<std::string>(j, "started_at", "");
  report.host = r.get<std::string>(j, "host", "");
  report.kernel = r.get<std::string>(j, "kernel", "");
  report.scheduler = r.get<std::string>(j, "scheduler", "");
  report.cgroup_layout = r.get<std::string>(j, "cgroup_layout", "");
  report.interrupted = r.get<bool>(j, "interrupted", "");
  report.not_run = j.value("not_run", std::vector<std::string>{});  // added within version 1
  const auto& scenarios = r.array(j, "scenarios", "");
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    auto s = scenario_from(r, scenarios[i], fmt::format("scenarios[{}]", i));
    if (!s) return tl::unexpected(s.error());
    report.scenarios.push_back(std::move(*s));
  }
  if (!r.error.empty()) return make_error(Errc::invalid_argument, r.error);
  return report;
}

Result<RunReport> load_report(const std::string& path) {
  auto text = internal::read_text_file(path, "report");
  if (!text) return tl::unexpected(text.error());
  auto r = report_from_json(*text);
  if (!r) return make_error(r.error().code, fmt::format("{}: {}", path, r.error().message));
  return r;
}

}  // namespace scxkit
