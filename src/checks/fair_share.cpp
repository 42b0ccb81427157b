// The fair share the starvation and wake-latency checks judge against: what a
// fair scheduler owes each worker, given the scenario's own workers and the
// rest of the machine's runnable tasks. A busy machine lowers every share; a
// worker that gets far less than its fair share was starved, not crowded.
#include <algorithm>
#include <array>
#include <vector>

#include "scxkit/checks.hpp"

namespace scxkit {

namespace {

// The kernel's sched_prio_to_weight, nice -20 .. 19 (kernel/sched/core.c).
constexpr std::array<double, 40> kNiceWeight = {
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906,  3121,  2501,  1991,  1586,  1277,  1024,  820,   655,   526,   423,  335,  272,  215,
    172,   137,   110,   87,    70,    56,    45,    36,    29,    23,    18,   15};
constexpr double kNiceZero = 1024;

double weight_of(const WorkerResult& w) {
  if (w.rt_priority > 0) return kNiceZero;  // what a fair scheduler would give it
  return kNiceWeight[static_cast<std::size_t>(std::clamp(w.nice, -20, 19) + 20)];
}

CpuSet allowed_of(const WorkerResult& w) {
  CpuSet all;
  for (const auto& p : w.placements) all = all | p.allowed;
  return all;
}

}  // namespace

void estimate_fair_shares(std::vector<WorkerResult>& workers, const MachineLoad& machine,
                          double duration_s) {
  if (machine.samples == 0 || machine.cpus == 0 || duration_s <= 0) return;
  // Runnable tasks per CPU, averaged over the scenario: the outside spread
  // evenly, each worker spread over the CPUs it may use.
  std::vector<double> load;
  auto at = [&load](int cpu) -> double& {
    if (static_cast<std::size_t>(cpu) >= load.size()) load.resize(cpu + 1, 0);
    return load[static_cast<std::size_t>(cpu)];
  };
  std::vector<CpuSet> allowed;
  std::vector<double> runnable;  // average runnable tasks over the scenario
  CpuSet host;
  for (const auto& w : workers) host = host | allowed_of(w);
  for (const auto& w : workers) {
    allowed.push_back(allowed_of(w));
    runnable.push_back(static_cast<double>(w.cpu_ns + w.wait_ns) / 1e9 / duration_s);
    const auto cpus = allowed.back().cpus();
    for (int c : cpus) at(c) += runnable.back() / static_cast<double>(cpus.size());
  }
  // The outside's runnable tasks are where the outside's CPU time went: each
  // CPU's busy time less the workers' time there (a CPU a real-time hog kept
  // has none of it). Evenly, where busy times were not measured.
  std::vector<double> own_time;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const auto cpus = allowed[i].cpus();
    for (int c : cpus) {
      if (static_cast<std::size_t>(c) >= own_time.size()) own_time.resize(c + 1, 0);
      own_time[static_cast<std::size_t>(c)] +=
          static_cast<double>(workers[i].cpu_ns) / 1e9 / static_cast<double>(cpus.size());
    }
  }
  std::vector<double> outside_time(machine.cpu_busy.size(), 0);
  double outside_total = 0;
  for (std::size_t c = 0; c < machine.cpu_busy.size(); ++c) {
    const double mine = c < own_time.size() ? own_time[c] : 0;
    outside_time[c] = std::max(0.0, machine.cpu_busy[c] - mine);
    outside_total += outside_time[c];
  }
  const auto host_cpus = host.cpus();
  for (int c : host_cpus) {
    const auto i = static_cast<std::size_t>(c);
    at(c) += outside_total > 0
                 ? machine.outside * (i < outside_time.size() ? outside_time[i] : 0) / outside_total
                 : machine.outside / static_cast<double>(machine.cpus);
  }
  for (std::size_t i = 0; i < workers.size(); ++i) {
    auto& w = workers[i];
    const auto cpus = allowed[i].cpus();
    if (cpus.empty() || w.active_s <= 0) continue;
    double on_cpus = 0;
    for (int c : cpus) on_cpus += at(c);
    // Its competitors: everything runnable on its CPUs but itself.
    const double others = std::max(0.0, on_cpus - runnable[i]);
    const double n = static_cast<double>(cpus.size());
    const double weight = weight_of(w);
    w.fair_share = std::min(1.0, n * weight / (weight + others * kNiceZero));
    // Fair tasks do not delay a real-time one.
    w.contention = w.rt_priority > 0 ? 1.0 : std::max(1.0, (others + 1) / n);
  }
}

}  // namespace scxkit
