// `scxkit run --vm`: the same run, inside the VM runner's guest (a real
// sched_ext kernel), with the reports and the scheduler's log brought back out
// to the host paths asked for (docs/RUN.md). Also how `--scheduler NAME` finds
// an example scheduler.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <tuple>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "scxkit/vm.hpp"
#include "vm/process.hpp"

namespace scxkit::cli {

namespace {

namespace fs = std::filesystem;

// Where files the guest writes under $SCXKIT_OUT land in the guest.
constexpr const char* kGuestOut = "/out";

// The guest's own deadline: boot, the scenarios slowed down by emulation
// (register loops ~1.2x, memory ~3x, the harness's own start and stop of each
// scenario far more), the scheduler's start and stop, power-off.
unsigned default_timeout_s(double scenario_seconds) {
  return static_cast<unsigned>(180 + 4 * scenario_seconds);
}

// Copies a file the guest wrote out of the run's output directory.
bool bring_out(const fs::path& from, const std::string& to, const char* what) {
  std::error_code ec;
  if (!fs::exists(from, ec)) {
    print_error(fmt::format("the guest wrote no {}", what));
    return false;
  }
  // Written, not copied: the host path may be a device (/dev/null) or a link.
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  out.close();
  if (!in || !out) {
    print_error(fmt::format("cannot write the {} to {}", what, to));
    return false;
  }
  return true;
}

}  // namespace

Result<std::string> resolve_scheduler(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    std::error_code ec;
    const fs::path p = fs::absolute(name, ec);
    if (ec || ::access(p.c_str(), X_OK) != 0) {
      return make_error(Errc::not_found,
                        fmt::format("scheduler {} is not an executable file", name));
    }
    return p.string();
  }
  // An example by name: beside this program in the build tree
  // (examples/NAME/scx_NAME), beside it installed, else in PATH.
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> tried;
  if (!ec) {
    const fs::path dir = self.parent_path();
    tried = {dir / "examples" / name / ("scx_" + name), dir / ("scx_" + name)};
  }
  for (const auto& p : tried) {
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  for (const std::string& candidate : {"scx_" + name, name}) {
    const std::string found = vm::internal::find_executable(candidate);
    if (!found.empty()) return found;
  }
  return make_error(
      Errc::not_found,
      fmt::format("no scheduler named '{}': not {} nor scx_{} or {} in PATH; build "
                  "the examples (cmake --build) or give a path",
                  name, tried.empty() ? "beside scxkit" : tried.front().string(), name, name));
}

int run_in_vm(const VmRunRequest& req) {
  std::vector<std::string> cmd = {"scxkit", "run", "--in-vm",
                                  ::isatty(STDOUT_FILENO) != 0 ? "terminal" : "plain"};
  cmd.insert(cmd.end(), req.guest_args.begin(), req.guest_args.end());
  vm::RunOptions opt;
  for (const auto& f : req.files) {
    std::error_code ec;
    const std::string abs = fs::absolute(f, ec).string();
    opt.add.push_back(abs);
    cmd.insert(cmd.end(), {"-f", abs});
  }
  const fs::path out_json = fs::path(kGuestOut) / "report.json";
  const fs::path out_html = fs::path(kGuestOut) / "report.html";
  const fs::path out_log = fs::path(kGuestOut) / "scheduler.log";
  if (!req.json_path.empty()) cmd.insert(cmd.end(), {"--json", out_json.string()});
  if (!req.html_path.empty()) cmd.insert(cmd.end(), {"--html", out_html.string()});
  if (!req.scheduler.empty()) {
    auto bin = resolve_scheduler(req.scheduler);
    if (!bin) {
      print_error(bin.error().message);
      return 2;
    }
    opt.add.push_back(*bin);
    cmd.insert(cmd.end(), {"--scheduler-log", out_log.string(), "--scheduler", *bin});
    if (!req.scheduler_args.empty()) {
      cmd.emplace_back("--");
      cmd.insert(cmd.end(), req.scheduler_args.begin(), req.scheduler_args.end());
    }
  }

  char tmpl[] = "/tmp/scxkit-run-vm.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    print_error(fmt::format("cannot make a temporary directory: {}", std::strerror(errno)));
    return 3;
  }
  const fs::path out_dir = tmpl;
  struct RemoveDir {
    fs::path p;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{out_dir};

  vm::KernelOptions k;
  k.progress = vm_progress(req.quiet);
  k.show_tool_output = static_cast<bool>(k.progress);
  auto kernel = vm::ensure_kernel(k);
  if (!kernel) {
    print_error(kernel.error().message);
    return 3;
  }
  opt.command = std::move(cmd);
  opt.kernel = *kernel;
  opt.cpus = req.cpus;
  opt.memory_mib = req.memory_mib;
  opt.timeout = std::chrono::seconds(req.timeout_s != 0 ? req.timeout_s
                                                        : default_timeout_s(req.scenario_seconds));
  opt.out_dir = out_dir.string();
  opt.cancel_fd = vm_cancel_fd();
  opt.progress = vm_progress(req.quiet);
  auto r = vm::run(opt);
  if (!r) {
    print_error(r.error().message);
    return 3;
  }
  using Outcome = vm::RunResult::Outcome;
  if (r->outcome == Outcome::cancelled) {
    print_error("interrupted: the VM was stopped");
    return 130;
  }
  if (r->outcome != Outcome::exited) {
    for (const auto& l : r->kernel_lines) fmt::print(stderr, "  | {}\n", l);
    print_error(fmt::format("the VM run did not finish: {}", r->message));
    return 3;
  }
  // The guest's scxkit said how the run went (its exit code); the files it
  // wrote are the host's now, whatever the outcome.
  bool ok = true;
  if (!req.scheduler.empty() && !req.scheduler_log.empty()) {
    ok &= bring_out(out_dir / out_log.filename(), req.scheduler_log, "scheduler log");
  }
  if (r->status <= 1 || r->status == 130) {  // a report exists only when scenarios ran
    for (const auto& [path, from, what] : {std::tuple{req.json_path, out_json, "JSON report"},
                                           std::tuple{req.html_path, out_html, "HTML report"}}) {
      if (path.empty()) continue;
      const bool copied = bring_out(out_dir / from.filename(), path, what);
      if (copied) fmt::print("{}: {}\n", what, path);
      ok &= copied;
    }
  }
  if (!ok && r->status == 0) return 3;
  return r->status;
}

}  // namespace scxkit::cli
