#include "scxkit/scenario.hpp"

#include <gtest/gtest.h>

#include "scenario/scenario_json.hpp"

namespace scxkit {
namespace {

TEST(BuiltinScenarios, AllTenAreValidOnTwoCpusAndTheTwoCpuOnesDropOutOnOne) {
  const auto two = builtin_scenarios(CpuSet::of({0, 1}));
  std::vector<std::string> names;
  for (const auto& s : two) {
    names.push_back(s.name);
    EXPECT_TRUE(validate(s, CpuSet::of({0, 1})))
        << s.name << ": " << validate(s, CpuSet::of({0, 1})).error().message;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"steady", "oversubscribed", "mixed", "cpuset-split",
                                             "cpuset-change", "cgroup-churn", "affinity-churn",
                                             "nice-sweep", "wake-pingpong", "rt-hog"}));
  const auto one = builtin_scenarios(CpuSet::of({3}));
  for (const auto& s : one) EXPECT_TRUE(validate(s, CpuSet::of({3}))) << s.name;
  EXPECT_EQ(one.size(), 6u);
  for (const auto& s : builtin_scenarios(CpuSet::parse("0-7").value())) {
    EXPECT_TRUE(validate(s, CpuSet::parse("0-7").value())) << s.name;
  }
}

TEST(ScenarioJson, EveryBuiltinSurvivesARoundTrip) {
  for (const auto& s : builtin_scenarios(CpuSet::of({0, 1}))) {
    const auto j = internal::scenario_to_json(s);
    auto back = parse_scenarios(j.dump());
    ASSERT_TRUE(back) << s.name << ": " << back.error().message;
    ASSERT_EQ(back->size(), 1u);
    EXPECT_EQ(internal::scenario_to_json((*back)[0]), j) << s.name;
  }
}

TEST(ScenarioJson, ReadsAFileOfScenariosWithDefaults) {
  auto parsed = parse_scenarios(R"({"scenarios": [
    {"name": "a", "workers": [{"name": "w", "work": "spin"}]},
    {"name": "b", "duration_ms": 500, "cgroups": [{"name": "g", "cpus": "0", "weight": 50}],
     "workers": [{"name": "w", "cgroup": "g", "work": "io-sleep", "count": 2, "sleep_ms": 3}],
     "steps": [{"at_ms": 100, "action": "set_cpus", "cgroup": "g", "cpus": "0-1"},
               {"at_ms": 200, "action": "set_nice", "worker": "w", "nice": 5}],
     "thresholds": {"max_gap_ms": 250, "off": ["fairness"]}}]})");
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  const Scenario& b = (*parsed)[1];
  EXPECT_EQ(b.duration, Millis(500));
  EXPECT_EQ(b.cgroups[0].cpus->to_string(), "0");
  EXPECT_EQ(*b.cgroups[0].weight, 50);
  EXPECT_EQ(b.workers[0].work, WorkType::io_sleep);
  EXPECT_EQ(b.workers[0].sleep, Millis(3));
  EXPECT_EQ(std::get<SetCpus>(b.steps[0].action).cpus.to_string(), "0-1");
  EXPECT_EQ(b.thresholds.max_gap, Millis(250));
  EXPECT_FALSE(b.thresholds.fairness);
  EXPECT_TRUE(b.thresholds.stuck);
  EXPECT_TRUE(validate(b, CpuSet::of({0, 1})));
  EXPECT_EQ((*parsed)[0].duration, Millis(3000));
}

// The message names the bad field.
std::string error_of(const char* json) {
  auto parsed = parse_scenarios(json);
  if (!parsed) return parsed.error().message;
  auto ok = validate((*parsed)[0], CpuSet::of({0, 1}));
  return ok ? "" : ok.error().message;
}

TEST(ScenarioJson, BadInputIsAnErrorNamingTheField) {
  EXPECT_EQ(error_of("{"), "not valid JSON (check brackets, commas and quotes)");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin", "cont": 2}]})"),
            "workers[0].cont: unknown field (see docs/RUN.md)");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin", "count": "2"}]})"),
            "workers[0].count: expected an integer, got string");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w"}]})"),
            "workers[0].work: required field missing");
  EXPECT_NE(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "sleep"}]})")
                .find("workers[0].work: unknown work type 'sleep' (known: spin, yield"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin", "cgroup": "g"}]})"),
            "workers[0].cgroup: no cgroup 'g' (declare it under \"cgroups\")");
  EXPECT_EQ(error_of(R"({"name": "x", "cgroups": [{"name": "g", "cpus": "0,5"}],
                         "workers": [{"name": "w", "work": "spin"}]})"),
            "cgroups[0].cpus: CPUs 5 are not available here (this host: 0-1)");
  EXPECT_EQ(
      error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin", "rt_priority": 5}]})"),
      "workers[0].affinity: a real-time worker must be pinned to fewer CPUs than the host "
      "has, so other tasks keep a CPU");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin"}],
                         "steps": [{"at_ms": 10, "action": "set_nice", "worker": "v", "nice": 1}]})"),
            "steps[0].worker: no worker 'v' in this scenario");
  EXPECT_EQ(
      error_of(R"({"name": "x", "duration_ms": 1000, "workers": [{"name": "w", "work": "spin"}],
                         "steps": [{"at_ms": 1000, "action": "stop", "worker": "w"}]})"),
      "steps[0].at_ms: must be inside the scenario's duration");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin"}],
                         "steps": [{"at_ms": 10, "action": "explode"}]})")
                .substr(0, 41),
            "steps[0].action: unknown action 'explode'");
  EXPECT_EQ(error_of(R"({"name": "x", "workers": [{"name": "w", "work": "spin"}],
                         "thresholds": {"off": ["speed"]}})"),
            "thresholds.off[0]: expected one of starvation, fairness, stuck, isolation, "
            "wake_latency, kernel");
  EXPECT_EQ(
      error_of(
          R"({"name": "x", "cgroups": [{"name": "_g"}], "workers": [{"name": "w", "work": "spin"}]})")
          .substr(0, 15),
      "cgroups[0].name");
  // A worker may sit in a cgroup only while a step has it in existence.
  EXPECT_EQ(
      error_of(R"({"name": "x", "duration_ms": 1000, "workers": [{"name": "w", "work": "spin"}],
                         "steps": [{"at_ms": 500, "action": "add_cgroup", "cgroup": {"name": "late"}},
                                   {"at_ms": 100, "action": "spawn",
                                    "worker": {"name": "v", "work": "spin", "cgroup": "late"}}]})"),
      "steps[1].worker.cgroup: cgroup 'late' does not exist at 100 ms");
}

TEST(ScenarioTimes, ScalingStretchesTimesButNotWork) {
  Scenario s = builtin_scenarios(CpuSet::of({0, 1}))[4];  // cpuset-change
  const Scenario half = scale_times(s, 0.5);
  EXPECT_EQ(half.duration, s.duration / 2);
  EXPECT_EQ(half.steps[0].at, s.steps[0].at / 2);
  EXPECT_EQ(half.workers[1].sleep, s.workers[1].sleep);
}

}  // namespace
}  // namespace scxkit
