// The HTML report: one self-contained page (inline CSS and SVG, no scripts,
// nothing fetched), a section per scenario with its checks and three plots.
#include <fmt/format.h>

#include "report/svg.hpp"
#include "scxkit/report.hpp"

namespace scxkit {

namespace {

using internal::escape_html;

const char* kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 820px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.pass { color: #fff; background: #2e7d32; padding: 1px 6px; border-radius: 3px; }
.fail { color: #fff; background: #c62828; padding: 1px 6px; border-radius: 3px; }
.skipped { color: #555; background: #eee; padding: 1px 6px; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; vertical-align: top; }
.findings { margin: 0; padding-left: 1.2em; color: #8b0000; }
.meta { color: #555; font-size: 0.9em; }
svg { display: block; margin: 1em 0; }
)";

std::string badge(bool passed) {
  return passed ? "<span class=\"pass\">PASS</span>" : "<span class=\"fail\">FAIL</span>";
}

std::string outcome_badge(CheckOutcome o) {
  switch (o) {
    case CheckOutcome::pass:
      return "<span class=\"pass\">pass</span>";
    case CheckOutcome::fail:
      return "<span class=\"fail\">fail</span>";
    case CheckOutcome::skipped:
      return "<span class=\"skipped\">skipped</span>";
  }
  return "";
}

std::string scenario_section(const ScenarioResult& s) {
  std::string out = fmt::format(
      "<h2 id=\"{0}\">{1} {0}</h2>\n<p class=\"meta\">{2} — {3:.1f} s, {4} "
      "workers</p>\n",
      escape_html(s.scenario.name), badge(s.passed()), escape_html(s.scenario.description),
      s.elapsed_s, s.workers.size());
  if (!s.error.empty())
    out += fmt::format("<p class=\"findings\">could not run: {}</p>\n", escape_html(s.error));
  out += "<table><tr><th>check</th><th>result</th><th>detail</th></tr>\n";
  for (const auto& c : s.checks) {
    std::string findings;
    if (c.outcome == CheckOutcome::fail) {
      findings = "<ul class=\"findings\">";
      for (const auto& f : c.findings) findings += "<li>" + escape_html(f) + "</li>";
      findings += "</ul>";
    }
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>\n", escape_html(c.name),
                       outcome_badge(c.outcome), escape_html(c.summary), findings);
  }
  out += "</table>\n";
  if (!s.kernel_lines.empty()) {
    out += "<p>kernel log during the scenario:</p><ul class=\"findings\">";
    for (const auto& l : s.kernel_lines) {
      out += fmt::format("<li>[{:.2f} s] {}: <code>{}</code></li>", l.at_s, escape_html(l.kind),
                         escape_html(l.text));
    }
    out += "</ul>\n";
  }
  out += internal::cpu_share_chart(s);
  out += internal::wake_latency_chart(s);
  out += internal::timeline_chart(s);
  out +=
      "<details><summary>workers</summary><table><tr><th>worker</th><th>work</th><th>cgroup</th>"
      "<th>ops/s</th><th>CPU</th><th>run-queue wait</th><th>migrations</th><th>ran on</th>"
      "<th>longest gap</th></tr>\n";
  for (const auto& w : s.workers) {
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0f}</td><td>{:.1f}%</td><td>{:.1f} ms</td>"
        "<td>{}</td><td>{}</td><td>{:.1f} ms</td></tr>\n",
        escape_html(w.name), to_string(w.work), escape_html(w.cgroup.empty() ? "(root)" : w.cgroup),
        w.ops_per_s(), 100 * w.cpu_share(), static_cast<double>(w.wait_ns) / 1e6, w.migrations,
        w.ran_on().to_string(), w.max_gap_ms);
  }
  return out + "</table></details>\n";
}

}  // namespace

std::string report_to_html(const RunReport& report) {
  std::size_t passed = 0;
  for (const auto& s : report.scenarios) passed += s.passed() ? 1 : 0;
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>scxkit run "
      "{}</title>\n"
      "<style>{}</style></head><body>\n<h1>scxkit run {}</h1>\n<p class=\"meta\">{} on {} (kernel "
      "{}), scheduler: {}; cgroups: {}</p>\n<p>{} of {} scenarios passed{}</p>\n<ul>\n",
      escape_html(report.started_at), kStyle, badge(report.passed()),
      escape_html(report.started_at), escape_html(report.host), escape_html(report.kernel),
      escape_html(report.scheduler), escape_html(report.cgroup_layout), passed,
      report.scenarios.size(), report.interrupted ? " (interrupted)" : "");
  for (const auto& s : report.scenarios) {
    out += fmt::format("<li><a href=\"#{0}\">{0}</a> {1}</li>\n", escape_html(s.scenario.name),
                       badge(s.passed()));
  }
  out += "</ul>\n";
  for (const auto& s : report.scenarios) out += scenario_section(s);
  return out + "</body></html>\n";
}

}  // namespace scxkit
