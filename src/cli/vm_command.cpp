#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "scxkit/vm.hpp"

namespace scxkit::cli {

namespace {

// Exit code when the VM could not be set up at all (no QEMU, no kernel, ...).
constexpr int kVmSetupFailed = 125;

int g_cancel_pipe[2] = {-1, -1};
void on_cancel_signal(int) {
  const int saved = errno;
  (void)!::write(g_cancel_pipe[1], "x", 1);
  errno = saved;
}

}  // namespace

// SIGINT, SIGTERM and SIGHUP cancel the run: the guest is killed, temp files go.
int vm_cancel_fd() {
  if (g_cancel_pipe[0] < 0 && ::pipe2(g_cancel_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  struct sigaction sa {};
  sa.sa_handler = on_cancel_signal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  return g_cancel_pipe[0];
}

vm::ProgressFn vm_progress(bool quiet) {
  if (quiet || ::isatty(STDERR_FILENO) == 0) return {};
  return [](std::string_view line) { fmt::print(stderr, "scxkit vm: {}\n", line); };
}

namespace {

struct KernelFlags {
  vm::KernelOptions options;
  bool quiet = false;
};

void add_kernel_flags(CLI::App* cmd, KernelFlags& k) {
  cmd->add_option("--kernel", k.options.spec,
                  "Kernel: a version or prefix (7.3, 7.3.4+deb13) in the suite, or a vmlinuz path "
                  "(default: newest cached 7.x, else newest 7.x in the suite)");
  cmd->add_option("--suite", k.options.suite, "Debian suite to take kernels from")
      ->capture_default_str();
  cmd->add_option("--mirror", k.options.mirror,
                  "Debian mirror URI (default: the one the machine's apt sources name)");
  cmd->add_option("--cache-dir", k.options.cache_dir,
                  "Kernel cache (default: $XDG_CACHE_HOME/scxkit or ~/.cache/scxkit)");
  cmd->add_flag("--quiet,-q", k.quiet, "No progress lines (they go to stderr on a terminal only)");
}

Result<vm::Kernel> get_kernel(KernelFlags& k) {
  k.options.progress = vm_progress(k.quiet);
  k.options.show_tool_output = static_cast<bool>(k.options.progress);
  return vm::ensure_kernel(k.options);
}

void print_lines(const std::vector<std::string>& lines, const char* heading) {
  if (lines.empty()) return;
  fmt::print(stderr, "{}\n", heading);
  for (const auto& l : lines) fmt::print(stderr, "  | {}\n", l);
}

struct RunFlags {
  KernelFlags kernel;
  vm::RunOptions run;
  std::string topology, kernel_log, accel = "auto";
  unsigned timeout = 300, boot_timeout = 120;
};

int run_vm(RunFlags& f) {
  if (!f.topology.empty()) {
    auto t = vm::parse_topology(f.topology);
    if (!t) {
      print_error(t.error().message);
      return 2;
    }
    f.run.topology = *t;
  }
  f.run.accel = f.accel == "kvm"   ? vm::Accel::kvm
                : f.accel == "tcg" ? vm::Accel::tcg
                                   : vm::Accel::automatic;
  f.run.timeout = std::chrono::seconds(f.timeout);
  f.run.boot_timeout = std::chrono::seconds(f.boot_timeout);
  f.run.cache_dir = f.kernel.options.cache_dir;
  f.run.cancel_fd = vm_cancel_fd();
  f.run.progress = vm_progress(f.kernel.quiet);
  FILE* log = nullptr;
  if (f.kernel_log == "-") {
    f.run.kernel_log_fd = STDERR_FILENO;
  } else if (!f.kernel_log.empty()) {
    log = std::fopen(f.kernel_log.c_str(), "we");
    if (log == nullptr) {
      print_error(
          fmt::format("cannot write the kernel log to {}: {}", f.kernel_log, std::strerror(errno)));
      return 2;
    }
    f.run.kernel_log_fd = fileno(log);
  }
  auto kernel = get_kernel(f.kernel);
  if (!kernel) {
    print_error(kernel.error().message);
    return kVmSetupFailed;
  }
  f.run.kernel = *kernel;
  auto r = vm::run(f.run);
  if (log != nullptr) std::fclose(log);
  if (!r) {
    print_error(r.error().message);
    return kVmSetupFailed;
  }
  using Outcome = vm::RunResult::Outcome;
  if (r->outcome == Outcome::exited) return r->status;
  switch (r->outcome) {
    case Outcome::kernel_panic:
    case Outcome::kernel_oops:
      print_lines(r->kernel_lines, "the guest kernel's report:");
      break;
    default:
      print_lines(r->kernel_lines, "last lines of the guest console:");
  }
  print_error(r->message);
  return vm::exit_code_of(*r);
}

int show_kernel(KernelFlags& k, bool list, const std::string& which) {
  if (list) {
    k.options.progress = vm_progress(k.quiet);
    auto l = vm::list_kernels(k.options);
    if (!l) {
      print_error(l.error().message);
      return kVmSetupFailed;
    }
    for (const auto& r : l->available) {
      const bool cached = std::find(l->cached.begin(), l->cached.end(), r) != l->cached.end();
      fmt::print("{}{}\n", r, cached ? "  (cached)" : "");
    }
    return 0;
  }
  auto kernel = get_kernel(k);
  if (!kernel) {
    print_error(kernel.error().message);
    return kVmSetupFailed;
  }
  if (which.empty()) {
    auto or_dash = [](const std::string& p) { return p.empty() ? std::string("-") : p; };
    fmt::print("release  {}\nvmlinuz  {}\nvmlinux  {}\nconfig   {}\nbtf      {}\n", kernel->version,
               kernel->vmlinuz, or_dash(kernel->vmlinux), or_dash(kernel->config),
               or_dash(kernel->btf));
    return 0;
  }
  const std::string& path = which == "btf"      ? kernel->btf
                            : which == "config" ? kernel->config
                                                : kernel->vmlinuz;
  if (path.empty()) {
    print_error(fmt::format("kernel {} has no {} file", kernel->version, which));
    return kVmSetupFailed;
  }
  fmt::print("{}\n", path);
  return 0;
}

}  // namespace

void add_vm_command(CLI::App& app, int& exit_code) {
  auto* vmc =
      app.add_subcommand("vm", "Run commands under a real sched_ext kernel in QEMU (docs/VM.md)");
  vmc->require_subcommand(1);

  static RunFlags r;
  auto* run = vmc->add_subcommand(
      "run",
      "Boot Debian's sched_ext kernel, run CMD as root in it, power off.\n"
      "CMD's stdout and stderr come out on scxkit's; files it writes under $SCXKIT_OUT come out in "
      "--out.\n"
      "Exit code: CMD's, or 123 guest kernel panic/Oops, 124 timeout, 125 VM setup or boot failed, "
      "126/127 CMD not executable/not found, 130 cancelled.");
  add_kernel_flags(run, r.kernel);
  run->add_option("--cpus", r.run.cpus, "Guest CPUs")
      ->check(CLI::Range(1, 255))
      ->capture_default_str();
  run->add_option("--topology", r.topology, "SOCKETS,CORES,THREADS (sets the CPU count)");
  run->add_option("--numa", r.run.numa_nodes, "NUMA nodes (CPUs and memory split evenly)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  run->add_option("--memory", r.run.memory_mib, "Guest memory in MiB")
      ->check(CLI::Range(128, 1 << 20))
      ->capture_default_str();
  run->add_option("--timeout", r.timeout, "Seconds for the whole run")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  run->add_option("--boot-timeout", r.boot_timeout, "Seconds for the guest to boot")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  run->add_option("--accel", r.accel, "auto (KVM only if a probe boots it), tcg or kvm")
      ->check(CLI::IsMember({"auto", "tcg", "kvm"}))
      ->capture_default_str();
  run->add_option("--add", r.run.add,
                  "Host file or directory to copy into the guest at the same path (repeatable)")
      ->allow_extra_args(false);  // one path per --add, so `--add X -- CMD` ends at X
  run->add_option("--out", r.run.out_dir,
                  "Host directory for the files CMD writes under $SCXKIT_OUT");
  run->add_option("--kernel-log", r.kernel_log,
                  "Where the guest kernel log goes: a file, or - for stderr");
  run->add_option("command", r.run.command, "CMD ARGS..., after --")->required();
  run->callback([&exit_code] { exit_code = run_vm(r); });

  static KernelFlags k;
  static bool list = false;
  static std::string which;
  auto* kernel =
      vmc->add_subcommand("kernel", "Fetch (if needed) and show the kernel `vm run` boots");
  add_kernel_flags(kernel, k);
  kernel->add_flag("--update", k.options.refresh,
                   "Refresh the package lists and take the newest match");
  kernel->add_flag("--list", list, "List the suite's amd64 kernels, marking the cached ones");
  auto* btf = kernel->add_flag_callback(
      "--btf", [] { which = "btf"; },
      "Print only the BTF path (for bpftool btf dump file PATH format c)");
  auto* config = kernel->add_flag_callback(
      "--config", [] { which = "config"; }, "Print only the config path");
  auto* vmlinuz = kernel->add_flag_callback(
      "--vmlinuz", [] { which = "vmlinuz"; }, "Print only the vmlinuz path");
  btf->excludes(config)->excludes(vmlinuz);
  config->excludes(vmlinuz);
  kernel->callback([&exit_code] { exit_code = show_kernel(k, list, which); });

  auto* agent =
      vmc->add_subcommand("guest-agent", "Inside the guest only: run the command /init was given");
  agent->group("");  // hidden from --help
  agent->callback([&exit_code] { exit_code = vm::guest_agent_main(); });
}

}  // namespace scxkit::cli
