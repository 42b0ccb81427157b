#include "scxkit/report.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace scxkit {
namespace {

RunReport sample_report(double ops_scale, double p99_us, CheckOutcome stuck) {
  RunReport r;
  r.started_at = "2026-11-22T05:00:00Z";
  r.host = "host";
  r.kernel = "6.18";
  r.scheduler = "default";
  ScenarioResult s;
  s.scenario = builtin_scenarios(CpuSet::of({0, 1}))[2];  // mixed
  s.elapsed_s = 3;
  s.sample_interval_s = 0.1;
  s.steps = {{1.0, "nice of x -> 5", ""}};
  s.kernel_lines = {{2.0, "soft lockup", "watchdog: BUG: soft lockup <cpu#0>"}};
  WorkerResult spin;
  spin.name = "spin.0";
  spin.spec = "spin";
  spin.cgroup = "cpu";
  spin.active_s = 3;
  spin.ops = static_cast<std::uint64_t>(30000 * ops_scale);
  spin.cpu_ns = static_cast<std::uint64_t>(2.4e9 * ops_scale);
  spin.max_gap_ms = 12;
  spin.placements = {{0, CpuSet::of({0, 1}), CpuSet::of({1})}};
  spin.cpu_share_timeline = {0.8, 0.7, 0.9};
  WorkerResult io = spin;
  io.name = "io.0";
  io.spec = "io";
  io.work = WorkType::io_sleep;
  io.cgroup = "wake";
  io.wake = {1000, 60, p99_us, p99_us * 2, {{60, 900}, {p99_us, 90}, {p99_us * 2, 10}}};
  s.workers = {spin, io};
  s.checks = {{"stuck", stuck, "longest gap", {"io.0 waited"}, 1.5},
              {"kernel", CheckOutcome::pass, "no kernel trouble logged", {}, {}}};
  r.scenarios.push_back(s);
  return r;
}

TEST(ReportJson, RoundTripsAndCarriesItsSchemaAndVersion) {
  const RunReport r = sample_report(1, 100, CheckOutcome::pass);
  const std::string text = report_to_json(r);
  EXPECT_NE(text.find("\"schema\": \"scxkit-run\""), std::string::npos);
  EXPECT_NE(text.find("\"schema_version\": 1"), std::string::npos);
  auto back = report_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(report_to_json(*back), text);
  EXPECT_EQ(back->scenarios[0].workers[1].wake.p99_us, 100);
  EXPECT_EQ(back->scenarios[0].workers[0].placements[0].ran_on, CpuSet::of({1}));
}

TEST(ReportJson, RefusesOtherSchemasNewerVersionsAndDamagedRecords) {
  EXPECT_EQ(report_from_json("[]").error().message,
            "not a JSON object (is this an scxkit run report?)");
  EXPECT_EQ(report_from_json(R"({"schema": "other"})").error().message,
            "not an scxkit run report (its \"schema\" is not \"scxkit-run\")");
  auto newer = report_from_json(R"({"schema": "scxkit-run", "schema_version": 2})");
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("schema version 2 is not one this scxkit reads"),
            std::string::npos);
  std::string text = report_to_json(sample_report(1, 100, CheckOutcome::pass));
  text.replace(text.find("\"cpu_ns\""), 8, "\"cpu_xx\"");
  EXPECT_EQ(report_from_json(text).error().message, "scenarios[0].workers[0].cpu_ns: missing");
}

TEST(Compare, FlagsARegressionOnlyPastBothFloors) {
  const RunReport base = sample_report(1, 100, CheckOutcome::pass);
  // 5% fewer ops: past the absolute floor (10 ops/s) but not the 10% relative one.
  EXPECT_FALSE(compare_reports(base, sample_report(0.95, 100, CheckOutcome::pass)).regressed());
  // 50% fewer ops: past both.
  const auto slower = compare_reports(base, sample_report(0.5, 100, CheckOutcome::pass));
  EXPECT_TRUE(slower.regressed());
  EXPECT_NE(format_comparison(slower).find("spin: ops/s per worker"), std::string::npos);
  // p99 100 -> 250 us: +150%, but under the 200 us absolute floor.
  EXPECT_FALSE(compare_reports(base, sample_report(1, 250, CheckOutcome::pass)).regressed());
  // p99 100 -> 400 us: past both.
  EXPECT_TRUE(compare_reports(base, sample_report(1, 400, CheckOutcome::pass)).regressed());
  // A looser relative floor lets the 50% drop through.
  EXPECT_FALSE(
      compare_reports(base, sample_report(0.5, 100, CheckOutcome::pass), {.relative_floor = 0.6})
          .regressed());
  // A check that passed and now fails always counts.
  const auto check = compare_reports(base, sample_report(1, 100, CheckOutcome::fail));
  EXPECT_TRUE(check.regressed());
  EXPECT_NE(format_comparison(check).find("check stuck"), std::string::npos);
  // Improvements never do.
  EXPECT_FALSE(compare_reports(sample_report(0.5, 400, CheckOutcome::fail), base).regressed());
}

TEST(ReportHtml, IsOneSelfContainedPageWithThePlotsAndEscapedText) {
  const std::string html = report_to_html(sample_report(1, 100, CheckOutcome::fail));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  // Only the SVG namespace names a URL.
  const std::regex url("https?://");
  const auto urls =
      std::distance(std::sregex_iterator(html.begin(), html.end(), url), std::sregex_iterator());
  const std::regex svg("<svg ");
  EXPECT_EQ(urls, std::distance(std::sregex_iterator(html.begin(), html.end(), svg),
                                std::sregex_iterator()));
  EXPECT_NE(html.find("share of one CPU over each worker"), std::string::npos);
  EXPECT_NE(html.find("wake-up latency: share of each worker"), std::string::npos);
  EXPECT_NE(html.find("timeline: each worker"), std::string::npos);
  EXPECT_NE(html.find("stuck failed"), std::string::npos);
  EXPECT_NE(html.find("soft lockup &lt;cpu#0&gt;"), std::string::npos);
  EXPECT_EQ(html.find("soft lockup <cpu#0>"), std::string::npos);
}

}  // namespace
}  // namespace scxkit
