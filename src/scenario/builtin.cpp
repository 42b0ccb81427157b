// The built-in scenario set, laid out over the host's CPUs: each one a few
// seconds of one kind of trouble a scheduler must handle.
#include <fmt/format.h>

#include "scxkit/scenario.hpp"

namespace scxkit {

namespace {

WorkerSpec worker(std::string name, std::string cgroup, WorkType work, int count) {
  WorkerSpec w;
  w.name = std::move(name);
  w.cgroup = std::move(cgroup);
  w.work = work;
  w.count = count;
  return w;
}

Step at(long long ms, StepAction a) {
  return Step{Millis(ms), std::move(a)};
}

}  // namespace

std::vector<Scenario> builtin_scenarios(const CpuSet& host) {
  const auto cpus = host.cpus();
  const int n = static_cast<int>(cpus.size());
  if (n == 0) return {};
  CpuSet lower, upper;  // the host split in two halves (equal when there is one CPU)
  for (int i = 0; i < n; ++i) (i < (n + 1) / 2 ? lower : upper).add(cpus[i]);
  const CpuSet first = CpuSet::of({cpus.front()});
  const CpuSet last = CpuSet::of({cpus.back()});
  std::vector<Scenario> out;

  {
    Scenario s{.name = "steady", .description = "one CPU-bound worker per CPU in one cgroup"};
    s.cgroups = {{"steady", {}, {}}};
    s.workers = {worker("spin", "steady", WorkType::spin, n)};
    out.push_back(s);
  }
  {
    Scenario s{.name = "oversubscribed",
               .description = "three CPU-bound workers per CPU share one cgroup"};
    s.cgroups = {{"busy", {}, {}}};
    s.workers = {worker("spin", "busy", WorkType::spin, 3 * n)};
    out.push_back(s);
  }
  {
    Scenario s{.name = "mixed", .description = "every work type side by side in two cgroups"};
    s.cgroups = {{"cpu", {}, 200}, {"wake", {}, 100}};
    s.workers = {worker("spin", "cpu", WorkType::spin, 2),
                 worker("yield", "cpu", WorkType::yield, 1),
                 worker("forks", "cpu", WorkType::fork_churn, 1),
                 worker("faults", "cpu", WorkType::page_fault, 1),
                 worker("bursty", "wake", WorkType::bursty, 1),
                 worker("io", "wake", WorkType::io_sleep, 1),
                 worker("pipe", "wake", WorkType::pipe_pingpong, 1),
                 worker("futex", "wake", WorkType::futex_pingpong, 1),
                 worker("mutex", "wake", WorkType::mutex, 1)};
    out.push_back(s);
  }
  if (n >= 2) {
    Scenario s{.name = "cpuset-split",
               .description = "two cgroups on disjoint halves of the CPUs, two workers each"};
    s.cgroups = {{"left", lower, {}}, {"right", upper, {}}};
    s.workers = {worker("l", "left", WorkType::spin, 2), worker("r", "right", WorkType::spin, 2)};
    out.push_back(s);

    Scenario c{.name = "cpuset-change",
               .description =
                   "a cgroup's cpuset moves between the halves and widens while its "
                   "workers run"};
    c.cgroups = {{"moving", lower, {}}};
    c.workers = {worker("spin", "moving", WorkType::spin, 2),
                 worker("io", "moving", WorkType::io_sleep, 1)};
    c.steps = {at(1000, SetCpus{"moving", upper}), at(2000, SetCpus{"moving", host})};
    out.push_back(c);
  }
  {
    Scenario s{.name = "cgroup-churn",
               .description = "a cgroup is added with workers, then emptied and removed"};
    s.cgroups = {{"stay", {}, {}}};
    WorkerSpec guest = worker("guest", "late", WorkType::spin, 2);
    s.workers = {worker("spin", "stay", WorkType::spin, n)};
    s.steps = {at(700, AddCgroup{{"late", {}, 50}}), at(800, SpawnWorkers{guest}),
               at(1800, MoveWorkers{"guest", "stay"}), at(2000, RemoveCgroup{"late"})};
    out.push_back(s);
  }
  if (n >= 2) {
    Scenario s{.name = "affinity-churn",
               .description = "workers' affinity flips between single CPUs and all CPUs"};
    s.cgroups = {{"churn", {}, {}}};
    s.workers = {worker("a", "churn", WorkType::spin, n),
                 worker("b", "churn", WorkType::bursty, n)};
    for (int i = 1; i * 300 < 3000; ++i) {
      const CpuSet& target = i % 3 == 0 ? host : (i % 3 == 1 ? first : last);
      s.steps.push_back(at(i * 300, SetAffinity{i % 2 ? "a" : "b", target}));
    }
    s.thresholds.fairness = false;  // pinning a group on one CPU is unfair by design
    out.push_back(s);
  }
  {
    Scenario s{.name = "nice-sweep",
               .description =
                   "four workers on one CPU at nice 0, 5, 10, 15; halfway the nice "
                   "values reverse"};
    s.cgroups = {{"nice", {}, {}}};
    for (int i = 0; i < 4; ++i) {
      WorkerSpec w = worker(fmt::format("nice{}", i * 5), "nice", WorkType::spin, 1);
      w.nice = i * 5;
      w.affinity = first;
      s.workers.push_back(w);
      s.steps.push_back(at(1500, SetNice{w.name, 15 - i * 5}));
    }
    out.push_back(s);
  }
  {
    Scenario s{.name = "wake-pingpong",
               .description = "pipe and futex ping-pong pairs: wake-up latency under churn"};
    s.cgroups = {{"pingpong", {}, {}}};
    s.workers = {worker("pipe", "pingpong", WorkType::pipe_pingpong, n),
                 worker("futex", "pingpong", WorkType::futex_pingpong, n)};
    out.push_back(s);
  }
  if (n >= 2) {
    Scenario s{.name = "rt-hog",
               .description =
                   "a SCHED_FIFO busy worker pinned to one CPU for 2 s beside normal "
                   "workers that may use every CPU"};
    s.cgroups = {{"normal", {}, {}}};
    WorkerSpec hog = worker("hog", "", WorkType::spin, 1);
    hog.rt_priority = 1;
    hog.affinity = last;
    hog.start = Millis(500);
    hog.stop = Millis(2500);
    s.workers = {worker("spin", "normal", WorkType::spin, n - 1),
                 worker("io", "normal", WorkType::io_sleep, 1), hog};
    s.thresholds.starvation = true;
    out.push_back(s);
  }
  return out;
}

}  // namespace scxkit
