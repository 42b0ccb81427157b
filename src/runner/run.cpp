// run_scenarios: validate, find the cgroup layout, clear what dead runs left,
// start the scheduler if one is asked for, run each scenario, stop it.
#include <sys/utsname.h>

#include <ctime>

#include <fmt/format.h>

#include "runner/scenario_run.hpp"
#include "scxkit/run.hpp"

namespace scxkit {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

tl::expected<RunReport, RunFailure> run_scenarios(const std::vector<Scenario>& scenarios,
                                                  const RunOptions& options) {
  auto fail = [](std::string message) {
    return tl::unexpected(RunFailure{std::move(message), std::nullopt});
  };
  if (scenarios.empty()) return fail("no scenarios to run");
  auto host = CpuSet::allowed();
  if (!host) return fail(host.error().message);
  std::vector<Scenario> plan;
  for (const auto& s : scenarios) {
    plan.push_back(options.duration_scale ? scale_times(s, *options.duration_scale) : s);
    if (auto ok = validate(plan.back(), *host); !ok) {
      return fail(fmt::format("scenario '{}': {}", s.name, ok.error().message));
    }
  }
  CgroupLayout layout;
  if (options.layout) {
    layout = *options.layout;
  } else {
    auto detected = detect_cgroup_layout();
    if (!detected) return fail(detected.error().message);
    layout = std::move(*detected);
  }
  if (auto stale = remove_stale_cgroup_runs(layout, options.cgroup_parent); !stale) {
    return fail(fmt::format("cleaning up after earlier runs: {}", stale.error().message));
  }

  RunReport report;
  report.started_at = utc_now();
  utsname u{};
  if (uname(&u) == 0) {
    report.host = u.nodename;
    report.kernel = u.release;
  }
  report.cgroup_layout = layout.summary();
  report.scheduler = "default";
  std::optional<Scheduler> scheduler;
  if (options.scheduler) {
    auto started = Scheduler::start(*options.scheduler);
    if (!started)
      return tl::unexpected(RunFailure{problem_of(started.error()).message, started.error()});
    scheduler.emplace(std::move(*started));
    report.scheduler = scheduler->name();
  }

  internal::RunContext ctx;
  ctx.layout = &layout;
  ctx.cgroup_parent = options.cgroup_parent;
  ctx.host = *host;
  ctx.sample_interval = options.sample_interval;
  ctx.kernel_log = options.kernel_log;
  ctx.stop = options.stop;
  ctx.observer = options.observer;
  ctx.scheduler = scheduler ? &*scheduler : nullptr;
  bool lost_scheduler = false;
  for (const auto& s : plan) {
    if (options.stop != nullptr && options.stop->load()) {
      report.interrupted = true;
      break;
    }
    if (lost_scheduler) {
      report.not_run.push_back(s.name);
      continue;
    }
    report.scenarios.push_back(internal::run_one_scenario(s, ctx));
    if (options.observer != nullptr) options.observer->finished(report.scenarios.back());
    report.interrupted |= report.scenarios.back().interrupted;
    for (const auto& c : report.scenarios.back().checks) {
      lost_scheduler |= c.name == "scheduler" && c.outcome == CheckOutcome::fail;
    }
  }
  if (scheduler) {
    if (auto stopped = scheduler->stop(); !stopped) {
      return tl::unexpected(RunFailure{stopped.error().message, std::nullopt});
    }
  }
  return report;
}

}  // namespace scxkit
