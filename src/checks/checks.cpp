// The six checks over a scenario's results. Each returns pass, fail with one
// finding per offender, or skipped with the reason.
#include "scxkit/checks.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>

namespace scxkit {

namespace {

// Workers shorter-lived than this say nothing about rates.
constexpr double kMinActiveS = 0.2;

CheckResult skipped(std::string name, std::string why) {
  return {std::move(name), CheckOutcome::skipped, std::move(why), {}, {}};
}

CheckResult verdict(std::string name, std::vector<std::string> findings, std::string pass_summary,
                    std::string fail_summary, std::optional<double> at_s) {
  CheckResult r{
      std::move(name), CheckOutcome::pass, std::move(pass_summary), std::move(findings), {}};
  if (!r.findings.empty()) {
    r.outcome = CheckOutcome::fail;
    r.summary = std::move(fail_summary);
    r.at_s = at_s;
  }
  return r;
}

void earliest(std::optional<double>& at, double t) {
  if (!at || t < *at) at = t;
}

CheckResult starvation(const Thresholds& t, const std::vector<WorkerResult>& workers) {
  if (!t.starvation) return skipped("starvation", "turned off for this scenario");
  std::vector<std::string> findings;
  std::size_t judged = 0;
  for (const auto& w : workers) {
    if (w.active_s < kMinActiveS) continue;
    ++judged;
    if (w.ops == 0) {
      findings.push_back(fmt::format("{} made no progress in {:.2f} s", w.name, w.active_s));
    } else if (cpu_hungry(w.work) && w.fair_share > 0 &&
               w.service() < t.min_fair_share * w.fair_share) {
      findings.push_back(fmt::format(
          "{} ran {:.1f}% of the time it was runnable; a fair share was {:.1f}% with {:.1f} "
          "tasks per CPU (minimum {:.0f}% of that)",
          w.name, 100 * w.service(), 100 * w.fair_share, w.contention, 100 * t.min_fair_share));
    } else if (cpu_hungry(w.work) && w.cpu_share() < t.min_cpu_share) {
      findings.push_back(fmt::format("{} got {:.1f}% of a CPU (minimum {:.1f}%)", w.name,
                                     100 * w.cpu_share(), 100 * t.min_cpu_share));
    }
  }
  if (judged == 0) return skipped("starvation", "no worker ran long enough to judge");
  return verdict("starvation", std::move(findings),
                 fmt::format("all {} workers progressed", judged),
                 fmt::format("starved workers (minimum {:.0f}% of a fair share for CPU-bound work)",
                             100 * t.min_fair_share),
                 std::nullopt);  // a verdict over each worker's whole run
}

CheckResult fairness(const Thresholds& t, const std::vector<WorkerResult>& workers) {
  if (!t.fairness) return skipped("fairness", "turned off for this scenario");
  // Instances of one worker entry: a later or moved entry had another history.
  using Key = std::tuple<std::string, std::string, WorkType, int, int, std::string>;
  std::map<Key, std::vector<const WorkerResult*>> peers;
  for (const auto& w : workers) {
    // Only CPU-hungry work says something about fair service: a sleeper's
    // rate is its sleep, a ping-pong pair's its placement.
    if (w.active_s < kMinActiveS || !w.failure.empty() || !cpu_hungry(w.work)) continue;
    peers[{w.cgroup, w.spec, w.work, w.nice, w.rt_priority, w.affinity}].push_back(&w);
  }
  std::vector<std::string> findings;
  std::size_t groups = 0;
  double worst = 0;
  for (const auto& [key, group] : peers) {
    if (group.size() < 2) continue;
    ++groups;
    auto measure = [](const WorkerResult* w) { return w->cpu_share(); };
    const auto [lo, hi] = std::minmax_element(
        group.begin(), group.end(), [&](auto* a, auto* b) { return measure(a) < measure(b); });
    const double spread = measure(*hi) > 0 ? (measure(*hi) - measure(*lo)) / measure(*hi) : 0;
    worst = std::max(worst, spread);
    if (spread > t.max_spread) {
      findings.push_back(fmt::format(
          "cgroup '{}' {} peers: {} got {:.1f}% of a CPU but {} got {:.1f}% (spread {:.2f}, "
          "maximum {:.2f})",
          std::get<0>(key), to_string(std::get<2>(key)), (*lo)->name, 100 * measure(*lo),
          (*hi)->name, 100 * measure(*hi), spread, t.max_spread));
    }
  }
  if (groups == 0) return skipped("fairness", "no cgroup has two or more CPU-hungry peers");
  return verdict("fairness", std::move(findings),
                 fmt::format("{} peer groups, worst spread {:.2f}", groups, worst),
                 "peers in a cgroup were served unequally", std::nullopt);
}

CheckResult stuck(const Thresholds& t, const std::vector<WorkerResult>& workers) {
  if (!t.stuck) return skipped("stuck", "turned off for this scenario");
  std::vector<std::string> findings;
  std::optional<double> at;
  double worst = 0;
  for (const auto& w : workers) {
    worst = std::max(worst, w.max_gap_ms);
    if (w.max_gap_ms > static_cast<double>(t.max_gap.count())) {
      findings.push_back(
          fmt::format("{} waited {:.0f} ms between progress checkpoints (at {:.2f} s; "
                      "maximum {} ms)",
                      w.name, w.max_gap_ms, w.max_gap_at_s, t.max_gap.count()));
      earliest(at, w.max_gap_at_s);
    }
  }
  if (workers.empty()) return skipped("stuck", "no workers");
  return verdict("stuck", std::move(findings), fmt::format("longest gap {:.1f} ms", worst),
                 fmt::format("workers stuck longer than {} ms", t.max_gap.count()), at);
}

CheckResult isolation(const Thresholds& t, const std::vector<WorkerResult>& workers) {
  if (!t.isolation) return skipped("isolation", "turned off for this scenario");
  std::vector<std::string> findings;
  std::optional<double> at;
  std::size_t epochs = 0;
  for (const auto& w : workers) {
    for (const auto& e : w.placements) {
      if (e.ran_on.empty()) continue;
      ++epochs;
      if (!e.ran_on.subset_of(e.allowed)) {
        findings.push_back(
            fmt::format("{} ran on CPU {} outside its allowed CPUs {} (from {:.2f} s)", w.name,
                        e.ran_on.minus(e.allowed).to_string(), e.allowed.to_string(), e.from_s));
        earliest(at, e.from_s);
      }
    }
  }
  if (epochs == 0) return skipped("isolation", "no CPU samples were taken");
  return verdict("isolation", std::move(findings),
                 fmt::format("every worker stayed on its allowed CPUs ({} placements)", epochs),
                 "workers ran outside their cpuset or affinity", at);
}

CheckResult wake_latency(const Thresholds& t, const std::vector<WorkerResult>& workers) {
  if (!t.wake_latency) return skipped("wake_latency", "turned off for this scenario");
  std::vector<std::string> findings;
  std::size_t judged = 0;
  double worst = 0;
  for (const auto& w : workers) {
    // With fewer than 100 wake-ups the p99 is the worst one: a starved sleeper
    // that woke rarely, and late, is judged too.
    if (w.wake.count == 0) continue;
    ++judged;
    worst = std::max(worst, w.wake.p99_us);
    // A waking task queues behind the tasks runnable on its CPUs: the budget
    // grows with them.
    const double limit = t.max_wake_p99_us * std::max(1.0, w.contention);
    if (w.wake.p99_us > limit) {
      findings.push_back(
          fmt::format("{}: p99 wake latency {:.0f} us over {} wake-ups (maximum {:.0f} us at "
                      "{:.1f} tasks per CPU)",
                      w.name, w.wake.p99_us, w.wake.count, limit, std::max(1.0, w.contention)));
    }
  }
  if (judged == 0) return skipped("wake_latency", "no worker measured a wake-up");
  return verdict("wake_latency", std::move(findings),
                 fmt::format("{} workers, worst p99 {:.0f} us", judged, worst),
                 fmt::format("wake-up latency p99 above {:.0f} us", t.max_wake_p99_us),
                 std::nullopt);
}

CheckResult kernel(const Thresholds& t, const std::vector<KernelLine>& lines, bool watched) {
  if (!t.kernel) return skipped("kernel", "turned off for this scenario");
  if (!watched) return skipped("kernel", "the kernel log could not be watched");
  std::vector<std::string> findings;
  std::optional<double> at;
  for (const auto& l : lines) {
    findings.push_back(fmt::format("[{:.2f} s] {}: {}", l.at_s, l.kind, l.text));
    earliest(at, l.at_s);
  }
  return verdict("kernel", std::move(findings), "no kernel trouble logged",
                 "the kernel logged trouble", at);
}

}  // namespace

std::vector<CheckResult> evaluate_checks(const Scenario& scenario,
                                         const std::vector<WorkerResult>& workers,
                                         const std::vector<KernelLine>& kernel_lines,
                                         bool kernel_log_watched) {
  const Thresholds& t = scenario.thresholds;
  return {starvation(t, workers),   fairness(t, workers),
          stuck(t, workers),        isolation(t, workers),
          wake_latency(t, workers), kernel(t, kernel_lines, kernel_log_watched)};
}

}  // namespace scxkit
