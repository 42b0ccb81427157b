// `scxkit run-bench`: the runner's own cost and its wake-latency figures, each
// measured side by side with a peer in alternating rounds (docs/BENCHMARKS.md).
//   overhead  the CPU-spin worker's rate under the harness against the same
//             loop in a bare process pinned to the same CPU
//   wake      the io-sleep worker's wake-up latency against cyclictest's, same
//             1 ms interval, same CPU, SCHED_OTHER both
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "cli/bench_util.hpp"
#include "cli/commands.hpp"
#include "scxkit/run.hpp"
#include "workload/progress.hpp"

namespace scxkit::cli {

namespace {

struct Rate {
  double per_wall_s = 0, per_cpu_s = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double seconds_of(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The spin loop in a bare child process pinned to `cpu`: no cgroup, no
// checkpoints, no shared memory.
Result<Rate> bare_spin(std::size_t cpu, double seconds) {
  int fds[2];
  if (pipe(fds) != 0) return os_error("pipe", errno);
  const pid_t pid = fork();
  if (pid < 0) return os_error("fork", errno);
  if (pid == 0) {
    close(fds[0]);
    const cpu_set_t one = CpuSet::of({cpu}).to_native();
    sched_setaffinity(0, sizeof(one), &one);
    const double wall0 = seconds_of(CLOCK_MONOTONIC), cpu0 = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
    std::uint64_t ops = 0, x = 1;
    volatile std::uint64_t sink = 0;
    while (seconds_of(CLOCK_MONOTONIC) - wall0 < seconds) {
      x = internal::spin_op(x);
      sink = x;
      ++ops;
    }
    (void)sink;
    const std::array<double, 2> rate{
        static_cast<double>(ops) / (seconds_of(CLOCK_MONOTONIC) - wall0),
        static_cast<double>(ops) / (seconds_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0)};
    _exit(write(fds[1], rate.data(), sizeof(rate)) == sizeof(rate) ? 0 : 1);
  }
  close(fds[1]);
  std::array<double, 2> rate{};
  const bool got = read(fds[0], rate.data(), sizeof(rate)) == sizeof(rate);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  if (!got) return make_error(Errc::system_error, "the bare spin process reported nothing");
  return Rate{rate[0], rate[1]};
}

Result<ScenarioResult> harness_run(WorkerSpec w, double seconds) {
  Scenario s;
  s.name = "bench";
  s.duration = Millis(static_cast<long long>(seconds * 1000));
  s.cgroups = {{"bench", {}, {}}};
  w.name = "w";
  w.cgroup = "bench";
  s.workers = {w};
  RunOptions o;
  o.cgroup_parent = fmt::format("scxkit-bench-{}", getpid());
  auto report = run_scenarios({s}, o);
  if (!report) return make_error(Errc::system_error, report.error().message);
  if (!report->scenarios[0].error.empty()) {
    return make_error(Errc::system_error, report->scenarios[0].error);
  }
  return report->scenarios[0];
}

// Both peers of a benchmark run on the same CPU: the last this process may use.
std::optional<std::size_t> bench_cpu() {
  auto host = CpuSet::allowed();
  if (!host) print_error(host.error().message);
  return host ? std::optional(host->cpus().back()) : std::nullopt;
}

int run_overhead(double seconds, int rounds) {
  const auto cpu_opt = bench_cpu();
  if (!cpu_opt) return 1;
  const std::size_t cpu = *cpu_opt;
  fmt::print(
      "CPU-spin rate on CPU {}: bare process vs a worker under scxkit run, {} rounds of {} s\n",
      cpu, rounds, seconds);
  std::vector<double> bare_wall, bare_cpu, run_wall, run_cpu;
  for (int r = 0; r < rounds; ++r) {
    auto bare = bare_spin(cpu, seconds);
    if (!bare) {
      print_error(bare.error().message);
      return 1;
    }
    WorkerSpec w;
    w.work = WorkType::spin;
    w.affinity = CpuSet::of({cpu});
    auto run = harness_run(w, seconds);
    if (!run) {
      print_error(run.error().message);
      return 1;
    }
    const WorkerResult& wr = run->workers.at(0);
    bare_wall.push_back(bare->per_wall_s);
    bare_cpu.push_back(bare->per_cpu_s);
    run_wall.push_back(wr.ops_per_s());
    run_cpu.push_back(static_cast<double>(wr.ops) / (static_cast<double>(wr.cpu_ns) / 1e9));
    fmt::print(
        "  round {}: bare {:.0f} ops/CPU-s ({:.0f} ops/s); harness {:.0f} ops/CPU-s ({:.0f} "
        "ops/s)\n",
        r + 1, bare_cpu.back(), bare_wall.back(), run_cpu.back(), run_wall.back());
  }
  const double cpu_ratio = median(run_cpu) / median(bare_cpu);
  const double wall_ratio = median(run_wall) / median(bare_wall);
  fmt::print(
      "median ops per CPU-second: bare {:.0f}, harness {:.0f}: harness/bare {:.4f} "
      "(overhead {:+.2f}%)\n",
      median(bare_cpu), median(run_cpu), cpu_ratio, 100 * (1 - cpu_ratio));
  fmt::print("median ops per wall second: bare {:.0f}, harness {:.0f}: harness/bare {:.4f}\n",
             median(bare_wall), median(run_wall), wall_ratio);
  return 0;
}

struct Latency {
  double p50 = 0, p99 = 0, max = 0;
  std::uint64_t count = 0;
};

// cyclictest's histogram (-h): "LLLLLL CCCCCC" lines, one per microsecond.
Result<Latency> cyclictest(std::size_t cpu, double seconds) {
  const std::string cmd =
      fmt::format("cyclictest -q -D {} -i 1000 -t 1 -a {} -h 100000 --policy=other 2>&1",
                  static_cast<int>(seconds), cpu);
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return os_error("popen cyclictest", errno);
  std::map<unsigned, std::uint64_t> hist;
  double max = 0;
  char line[256];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    unsigned us = 0, max_us = 0;
    unsigned long long n = 0;
    if (std::sscanf(line, "%u %llu", &us, &n) == 2 && line[0] != '#') {
      if (n > 0) hist[us] += n;
    } else if (std::sscanf(line, "# Max Latencies: %u", &max_us) == 1) {
      max = max_us;
    }
  }
  if (pclose(p) != 0 || hist.empty()) {
    return make_error(Errc::not_found,
                      "cyclictest did not run (install rt-tests: bash scripts/setup.sh)");
  }
  Latency l;
  for (const auto& [_, n] : hist) l.count += n;
  std::uint64_t seen = 0;
  for (const auto& [us, n] : hist) {
    seen += n;
    if (l.p50 == 0 && seen * 2 >= l.count) l.p50 = us;
    if (l.p99 == 0 && seen * 100 >= l.count * 99) l.p99 = us;
  }
  l.max = max;
  return l;
}

int run_wake(double seconds, int rounds) {
  const auto cpu_opt = bench_cpu();
  if (!cpu_opt) return 1;
  const std::size_t cpu = *cpu_opt;
  fmt::print(
      "wake-up latency of a 1 ms timed sleep on CPU {}, SCHED_OTHER: cyclictest vs the "
      "io-sleep worker, {} rounds of {} s\n",
      cpu, rounds, seconds);
  std::vector<double> c50, c99, cmax, w50, w99, wmax;
  for (int r = 0; r < rounds; ++r) {
    auto c = cyclictest(cpu, seconds);
    if (!c) {
      print_error(c.error().message);
      return 1;
    }
    WorkerSpec w;
    w.work = WorkType::io_sleep;
    w.sleep = Millis(1);
    w.affinity = CpuSet::of({cpu});
    auto run = harness_run(w, seconds);
    if (!run) {
      print_error(run.error().message);
      return 1;
    }
    const auto& wake = run->workers.at(0).wake;
    c50.push_back(c->p50);
    c99.push_back(c->p99);
    cmax.push_back(c->max);
    w50.push_back(wake.p50_us);
    w99.push_back(wake.p99_us);
    wmax.push_back(wake.max_us);
    fmt::print(
        "  round {}: cyclictest p50 {:.0f} p99 {:.0f} max {:.0f} us ({} wake-ups); worker "
        "p50 {:.0f} p99 {:.0f} max {:.0f} us ({} wake-ups)\n",
        r + 1, c->p50, c->p99, c->max, c->count, wake.p50_us, wake.p99_us, wake.max_us, wake.count);
  }
  fmt::print(
      "median of rounds, us: cyclictest p50 {:.0f} p99 {:.0f} max {:.0f}; worker p50 {:.0f} "
      "p99 {:.0f} max {:.0f} (worker figures are histogram bucket upper bounds, <= 25% "
      "over)\n",
      median(c50), median(c99), median(cmax), median(w50), median(w99), median(wmax));
  return 0;
}

}  // namespace

void add_run_bench_command(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("run-bench", "Measure the scenario runner against its peers");
  bench->require_subcommand(1);
  static double seconds = 3;
  static int rounds = 5;
  for (auto* opt_owner :
       {bench->add_subcommand("overhead",
                              "CPU-spin worker rate under the harness vs the "
                              "same loop bare"),
        bench->add_subcommand("wake", "io-sleep worker wake latency vs cyclictest")}) {
    opt_owner->add_option("--seconds", seconds, "Length of each round")
        ->check(CLI::Range(1.0, 600.0))
        ->capture_default_str();
    opt_owner->add_option("--rounds", rounds, "Rounds per side, alternating")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
  }
  bench->get_subcommand("overhead")->callback([&exit_code] {
    exit_code = run_overhead(seconds, rounds);
  });
  bench->get_subcommand("wake")->callback([&exit_code] { exit_code = run_wake(seconds, rounds); });
}

}  // namespace scxkit::cli
