// Reports of a run: the terminal summary (and live progress), the JSON record
// (schema "scxkit-run", version RunReport::kSchemaVersion, docs/RUN.md), one
// self-contained HTML page with SVG plots, and the comparison of two JSON
// records that flags regressions.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "scxkit/error.hpp"
#include "scxkit/run.hpp"

namespace scxkit {

std::string report_to_json(const RunReport& report);  // pretty-printed
Result<RunReport> report_from_json(std::string_view text);
Result<RunReport> load_report(const std::string& path);

std::string report_to_html(const RunReport& report);

// One block per scenario: its checks, and each failure's findings.
std::string terminal_summary(const RunReport& report, bool color);

// Live progress on `out`: a line rewritten in place when `interactive`, else
// one line per finished scenario.
std::unique_ptr<RunObserver> terminal_progress(std::FILE* out, bool interactive,
                                               std::size_t scenario_count);

// Comparing two runs, scenario by scenario. A metric regresses only when it
// got worse by more than its absolute floor AND its relative floor; a check
// that passed in the base and fails in the new run always regresses.
struct CompareOptions {
  double relative_floor = 0.10;  // 10%
};
struct MetricChange {
  std::string scenario, metric;
  double base = 0, now = 0;
  double abs_floor = 0, rel_floor = 0;
  bool regression = false;
  std::string note;
};
struct Comparison {
  std::vector<MetricChange> changes;
  std::vector<std::string> unmatched;  // scenarios only one run has
  bool regressed() const;
};
Comparison compare_reports(const RunReport& base, const RunReport& now,
                           const CompareOptions& options = {});
std::string format_comparison(const Comparison& c);

}  // namespace scxkit
