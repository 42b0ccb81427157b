// Comparing two run reports, scenario by scenario and worker spec by worker
// spec. Each metric has a direction and an absolute floor (docs/RUN.md); a
// change is a regression only past both that floor and the relative floor.
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "scxkit/report.hpp"

namespace scxkit {

namespace {

struct Metric {
  const char* name;
  bool higher_is_better;
  double abs_floor;
};
constexpr Metric kOpsPerS{"ops/s per worker", true, 10};
constexpr Metric kCpuShare{"CPU share per worker", true, 0.05};
constexpr Metric kWakeP99{"wake p99 us (worst worker)", false, 200};
constexpr Metric kMaxGap{"longest gap ms (worst worker)", false, 20};

struct SpecFigures {
  double ops_per_s = 0, cpu_share = 0, wake_p99 = 0, max_gap = 0;
  int n = 0;
  bool hungry = false, wakes = false;
};

std::map<std::string, SpecFigures> figures(const ScenarioResult& s) {
  std::map<std::string, SpecFigures> out;
  for (const auto& w : s.workers) {
    auto& f = out[w.spec];
    f.ops_per_s += w.ops_per_s();
    f.cpu_share += w.cpu_share();
    f.wake_p99 = std::max(f.wake_p99, w.wake.p99_us);
    f.max_gap = std::max(f.max_gap, w.max_gap_ms);
    f.hungry = cpu_hungry(w.work);
    f.wakes |= w.wake.count >= 20;
    ++f.n;
  }
  for (auto& [_, f] : out) {
    f.ops_per_s /= f.n;
    f.cpu_share /= f.n;
  }
  return out;
}

MetricChange change(const std::string& scenario, const std::string& spec, const Metric& m,
                    double base, double now, double rel_floor) {
  MetricChange c{
      scenario, fmt::format("{}: {}", spec, m.name), base, now, m.abs_floor, rel_floor, false, ""};
  const double worse = m.higher_is_better ? base - now : now - base;
  const double rel = base != 0 ? worse / std::abs(base) : (worse > 0 ? INFINITY : 0);
  c.regression = worse > m.abs_floor && rel > rel_floor;
  return c;
}

}  // namespace

bool Comparison::regressed() const {
  for (const auto& c : changes) {
    if (c.regression) return true;
  }
  return false;
}

Comparison compare_reports(const RunReport& base, const RunReport& now,
                           const CompareOptions& options) {
  Comparison out;
  std::map<std::string, const ScenarioResult*> base_by_name;
  for (const auto& s : base.scenarios) base_by_name[s.scenario.name] = &s;
  for (const auto& s : now.scenarios) {
    auto it = base_by_name.find(s.scenario.name);
    if (it == base_by_name.end()) {
      out.unmatched.push_back(fmt::format("{} (only in the new run)", s.scenario.name));
      continue;
    }
    const ScenarioResult& b = *it->second;
    base_by_name.erase(it);
    for (const auto& check : s.checks) {
      for (const auto& old : b.checks) {
        if (old.name != check.name) continue;
        if (old.outcome == CheckOutcome::pass && check.outcome == CheckOutcome::fail) {
          out.changes.push_back({s.scenario.name, "check " + check.name, 1, 0, 0, 0, true,
                                 "passed before, fails now: " + check.summary});
        }
      }
    }
    const auto bf = figures(b);
    for (const auto& [spec, f] : figures(s)) {
      auto old = bf.find(spec);
      if (old == bf.end()) continue;
      const double rel = options.relative_floor;
      const auto& o = old->second;
      out.changes.push_back(change(s.scenario.name, spec, kOpsPerS, o.ops_per_s, f.ops_per_s, rel));
      if (f.hungry) {
        out.changes.push_back(
            change(s.scenario.name, spec, kCpuShare, o.cpu_share, f.cpu_share, rel));
      }
      if (f.wakes && o.wakes) {
        out.changes.push_back(change(s.scenario.name, spec, kWakeP99, o.wake_p99, f.wake_p99, rel));
      }
      out.changes.push_back(change(s.scenario.name, spec, kMaxGap, o.max_gap, f.max_gap, rel));
    }
  }
  for (const auto& [name, _] : base_by_name) {
    out.unmatched.push_back(fmt::format("{} (only in the base run)", name));
  }
  return out;
}

std::string format_comparison(const Comparison& c) {
  std::string out;
  std::size_t regressions = 0;
  for (const auto& m : c.changes) {
    if (!m.note.empty()) {
      out += fmt::format("{:<16} {:<44} REGRESSION  {}\n", m.scenario, m.metric, m.note);
      ++regressions;
      continue;
    }
    const double pct = m.base != 0 ? 100 * (m.now - m.base) / std::abs(m.base) : 0;
    out += fmt::format("{:<16} {:<44} {:>12.4g} -> {:<12.4g} {:+7.1f}%{}\n", m.scenario, m.metric,
                       m.base, m.now, pct,
                       m.regression ? fmt::format("  REGRESSION (floors: {:g} and {:.0f}%)",
                                                  m.abs_floor, 100 * m.rel_floor)
                                    : "");
    regressions += m.regression ? 1 : 0;
  }
  for (const auto& u : c.unmatched) out += fmt::format("not compared: {}\n", u);
  out += regressions == 0 ? "no regression\n" : fmt::format("{} regressions\n", regressions);
  return out;
}

}  // namespace scxkit
