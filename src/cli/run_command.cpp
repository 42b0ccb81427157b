// `scxkit run`, `scxkit scenarios`, `scxkit compare`: the scenario runner's
// commands (docs/RUN.md).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "scxkit/report.hpp"
#include "scxkit/run.hpp"

namespace scxkit::cli {

namespace {

// Exit codes of `scxkit run` (README, docs/RUN.md).
enum RunExit : int {
  kPassed = 0,
  kChecksFailed = 1,
  kUsage = 2,
  kCouldNotRun = 3,
  kInterrupted = 130,
};

std::atomic<bool> g_stop{false};
void on_stop_signal(int) {
  g_stop.store(true);
}

struct Selection {
  std::vector<std::string> files;
  std::vector<std::string> names;
  bool builtins_with_files = false;  // without names: the built-ins too, not only the files'
};

// The built-ins plus every file's scenarios, narrowed to `names` when given.
Result<std::vector<Scenario>> select_scenarios(const Selection& sel) {
  auto host = CpuSet::allowed();
  if (!host) return tl::unexpected(host.error());
  std::vector<Scenario> all = builtin_scenarios(*host);
  std::vector<Scenario> from_files;
  for (const auto& f : sel.files) {
    auto loaded = load_scenarios(f);
    if (!loaded) return tl::unexpected(loaded.error());
    for (auto& s : *loaded) {
      if (auto ok = validate(s, *host); !ok) {
        return make_error(Errc::invalid_argument,
                          fmt::format("{}: scenario '{}': {}", f, s.name, ok.error().message));
      }
      from_files.push_back(std::move(s));
    }
  }
  if (sel.names.empty() && !from_files.empty() && !sel.builtins_with_files) return from_files;
  all.insert(all.end(), from_files.begin(), from_files.end());
  if (sel.names.empty()) return all;
  std::vector<Scenario> chosen;
  for (const auto& name : sel.names) {
    auto it =
        std::find_if(all.begin(), all.end(), [&](const Scenario& s) { return s.name == name; });
    if (it == all.end()) {
      return make_error(Errc::not_found,
                        fmt::format("no scenario named '{}' (see `scxkit scenarios`)", name));
    }
    chosen.push_back(*it);
  }
  return chosen;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    print_error(fmt::format("cannot write {}", path));
    return false;
  }
  return true;
}

struct RunArgs {
  Selection selection;
  std::string json_path, html_path;
  double scale = 1.0;
  std::string scheduler;
  std::vector<std::string> scheduler_args;
  std::string scheduler_log = "scxkit-scheduler.log";
  std::string sysfs_root = "/sys/kernel/sched_ext";
  std::string kernel_log = "/dev/kmsg";
  std::string cgroup_parent = "scxkit";
  bool quiet = false;
  // --vm: the run happens in the VM's guest (run_vm.cpp).
  bool vm = false;
  unsigned vm_cpus = 2, vm_memory = 1024, vm_timeout = 0;
  // Hidden: this is the guest's run for a host's `run --vm`, whose stdout is a
  // terminal ("terminal") or not ("plain"); the host reports where reports went.
  std::string in_vm;
};

// The host's `run --vm`: the same options, for the guest's `scxkit run`.
int run_run_in_vm(const RunArgs& a) {
  VmRunRequest req;
  for (const auto& n : a.selection.names) req.guest_args.insert(req.guest_args.end(), {"-s", n});
  if (a.scale != 1.0)
    req.guest_args.insert(req.guest_args.end(), {"--scale", fmt::format("{}", a.scale)});
  if (a.kernel_log != RunArgs{}.kernel_log)
    req.guest_args.insert(req.guest_args.end(), {"--kernel-log", a.kernel_log});
  if (a.sysfs_root != RunArgs{}.sysfs_root)
    req.guest_args.insert(req.guest_args.end(), {"--sysfs-root", a.sysfs_root});
  req.guest_args.insert(req.guest_args.end(), {"--cgroup-parent", a.cgroup_parent});
  if (a.quiet) req.guest_args.emplace_back("-q");
  req.files = a.selection.files;
  req.scheduler = a.scheduler;
  req.scheduler_args = a.scheduler_args;
  req.json_path = a.json_path;
  req.html_path = a.html_path;
  req.scheduler_log = a.scheduler_log;
  req.cpus = a.vm_cpus;
  req.memory_mib = a.vm_memory;
  req.timeout_s = a.vm_timeout;
  req.quiet = a.quiet;
  // The guest lays the scenarios out over its own CPUs; the host's view only sizes the timeout.
  if (auto scenarios = select_scenarios(a.selection)) {
    for (const auto& s : *scenarios)
      req.scenario_seconds += std::chrono::duration<double>(s.duration).count() * a.scale;
  } else {
    req.scenario_seconds = 60;
  }
  return run_in_vm(req);
}

int run_run(const RunArgs& a) {
  if (!a.scheduler_args.empty() && a.scheduler.empty()) {
    print_error("arguments after -- are for the scheduler: give one with --scheduler BIN");
    return kUsage;
  }
  if (a.vm) return run_run_in_vm(a);
  std::string scheduler;
  if (!a.scheduler.empty()) {
    auto bin = resolve_scheduler(a.scheduler);
    if (!bin) {
      print_error(bin.error().message);
      return kUsage;
    }
    scheduler = *bin;
  }
  auto scenarios = select_scenarios(a.selection);
  if (!scenarios) {
    print_error(scenarios.error().message);
    return kUsage;
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // In the guest of a `run --vm`, stdout is a pipe to the host's stdout.
  const bool tty = a.in_vm.empty() ? isatty(STDOUT_FILENO) != 0 : a.in_vm == "terminal";
  auto progress = terminal_progress(stdout, tty && !a.quiet, scenarios->size());
  RunOptions opt;
  if (a.scale != 1.0) opt.duration_scale = a.scale;
  opt.kernel_log = a.kernel_log;
  opt.cgroup_parent = a.cgroup_parent;
  opt.stop = &g_stop;
  opt.observer = a.quiet ? nullptr : progress.get();
  if (!scheduler.empty()) {
    SchedulerSpec spec;
    spec.binary = scheduler;
    spec.args = a.scheduler_args;
    spec.log_path = a.scheduler_log;
    spec.sysfs_root = a.sysfs_root;
    opt.scheduler = spec;
  }
  auto report = run_scenarios(*scenarios, opt);
  if (!report) {
    print_error(report.error().message);
    return kCouldNotRun;
  }
  fmt::print("\n{}", terminal_summary(*report, tty));
  if (!a.json_path.empty() && !write_file(a.json_path, report_to_json(*report)))
    return kCouldNotRun;
  if (!a.html_path.empty() && !write_file(a.html_path, report_to_html(*report)))
    return kCouldNotRun;
  if (a.in_vm.empty()) {  // else the host says where it put them
    if (!a.json_path.empty()) fmt::print("JSON report: {}\n", a.json_path);
    if (!a.html_path.empty()) fmt::print("HTML report: {}\n", a.html_path);
  }
  std::vector<std::string> failed;
  for (const auto& s : report->scenarios) {
    if (!s.passed()) failed.push_back(s.scenario.name);
  }
  failed.insert(failed.end(), report->not_run.begin(), report->not_run.end());
  if (report->interrupted) {
    print_error("interrupted: what ran so far is reported above");
    return kInterrupted;
  }
  if (!failed.empty()) {
    print_error(fmt::format("{} of {} scenarios failed: {}", failed.size(),
                            report->scenarios.size() + report->not_run.size(),
                            fmt::join(failed, ", ")));
    return kChecksFailed;
  }
  return kPassed;
}

int run_list(const Selection& sel) {
  auto scenarios = select_scenarios(sel);
  if (!scenarios) {
    print_error(scenarios.error().message);
    return kUsage;
  }
  for (const auto& s : *scenarios) {
    std::size_t workers = 0;
    for (const auto& w : s.workers) workers += static_cast<std::size_t>(w.count);
    fmt::print("{:<16} {:5.1f} s  {:3} workers  {}\n", s.name,
               std::chrono::duration<double>(s.duration).count(), workers, s.description);
  }
  return 0;
}

int run_compare(const std::string& base_path, const std::string& new_path, double rel_pct) {
  auto base = load_report(base_path);
  if (!base) {
    print_error(base.error().message);
    return kUsage;
  }
  auto now = load_report(new_path);
  if (!now) {
    print_error(now.error().message);
    return kUsage;
  }
  const Comparison c = compare_reports(*base, *now, {.relative_floor = rel_pct / 100});
  fmt::print("{}", format_comparison(c));
  return c.regressed() ? 1 : 0;
}

}  // namespace

void add_run_commands(CLI::App& app, int& exit_code) {
  static RunArgs a;
  auto* run = app.add_subcommand(
      "run",
      "Run workload scenarios in cgroups and check for starvation, unfairness, cpuset escapes, "
      "stuck tasks and kernel trouble.\nExit codes: 0 every check passed, 1 a check failed, 2 "
      "usage or bad scenario, 3 could not run (cgroups, scheduler), 130 interrupted.");
  run->add_option(
      "-s,--scenario", a.selection.names,
      "Run only these scenarios (repeatable; default: all built-ins, or all of --file)");
  run->add_option("-f,--file", a.selection.files, "Load scenarios from a JSON file (repeatable)")
      ->check(CLI::ExistingFile);
  run->add_option("--json", a.json_path, "Write the JSON report here");
  run->add_option("--html", a.html_path, "Write the HTML report here");
  run->add_option("--scale", a.scale, "Multiply every scenario's duration and times")
      ->check(CLI::Range(0.05, 100.0))
      ->capture_default_str();
  run->add_option("--scheduler", a.scheduler,
                  "Start this sched_ext scheduler (path or name) for the run, through the "
                  "scheduler lifecycle; default: the kernel's scheduler");
  run->add_option("--scheduler-log", a.scheduler_log, "Where the scheduler's output goes")
      ->capture_default_str();
  run->add_option("--sysfs-root", a.sysfs_root, "The sched_ext sysfs directory")
      ->capture_default_str();
  run->add_option("args", a.scheduler_args, "Arguments for the scheduler, after --");
  run->add_option("--kernel-log", a.kernel_log, "Kernel log to watch ('' to skip)")
      ->capture_default_str();
  run->add_option("--cgroup-parent", a.cgroup_parent,
                  "Cgroup directory (in every hierarchy) that holds the run cgroups")
      ->capture_default_str();
  run->add_flag("-q,--quiet", a.quiet, "No live progress");
  run->add_flag("--vm", a.vm,
                "Run inside a VM booted with a sched_ext kernel (scxkit vm); reports and the "
                "scheduler's log come back to the paths given");
  run->add_option("--cpus", a.vm_cpus, "With --vm: guest CPUs")
      ->check(CLI::Range(1, 255))
      ->capture_default_str();
  run->add_option("--memory", a.vm_memory, "With --vm: guest memory in MiB")
      ->check(CLI::Range(128, 1 << 20))
      ->capture_default_str();
  run->add_option(
         "--timeout", a.vm_timeout,
         "With --vm: seconds for the whole VM run (default: 180 + 4 x the scenarios' time)")
      ->check(CLI::Range(1, 86400));
  run->add_option("--in-vm", a.in_vm)->check(CLI::IsMember({"terminal", "plain"}))->group("");
  run->callback([&exit_code] { exit_code = run_run(a); });

  static Selection list_sel{.builtins_with_files = true};
  auto* list = app.add_subcommand("scenarios", "List the scenarios, one line each");
  list->add_option("-f,--file", list_sel.files, "Also list the scenarios of a JSON file")
      ->check(CLI::ExistingFile);
  list->callback([&exit_code] { exit_code = run_list(list_sel); });

  static std::string base, now;
  static double rel_pct = 10;
  auto* compare = app.add_subcommand(
      "compare",
      "Compare two JSON run reports; exit 1 if the new one regressed past both the absolute "
      "and the relative floor of a metric, 2 on unreadable input");
  compare->add_option("base", base, "The baseline report")->required()->check(CLI::ExistingFile);
  compare->add_option("new", now, "The new report")->required()->check(CLI::ExistingFile);
  compare->add_option("--relative-floor", rel_pct, "Relative floor in percent")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  compare->callback([&exit_code] { exit_code = run_compare(base, now, rel_pct); });
}

}  // namespace scxkit::cli
