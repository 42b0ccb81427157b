// Each subcommand registers itself on the root app; its callback stores the
// process exit code in `exit_code`.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "scxkit/error.hpp"
#include "scxkit/vm.hpp"

namespace scxkit::cli {

void add_doctor_command(CLI::App& app, int& exit_code);
void add_arena_command(CLI::App& app, int& exit_code);
void add_sched_command(CLI::App& app, int& exit_code);
void add_topo_command(CLI::App& app, int& exit_code);
void add_prog_command(CLI::App& app, int& exit_code);
// `arena show`, registered under the `arena` subcommand.
void add_arena_show_command(CLI::App* arena, int& exit_code);
void add_run_commands(CLI::App& app, int& exit_code);  // run, scenarios, compare
void add_run_bench_command(CLI::App& app, int& exit_code);
void add_vm_command(CLI::App& app, int& exit_code);
int run_fault_bench(std::uint32_t pages);
// `arena bench alloc` and `arena stress` (+ its hidden worker), in their own files.
void add_alloc_bench_command(CLI::App& bench, int& exit_code);
void add_alloc_stress_command(CLI::App& arena, int& exit_code);
int run_lifecycle_bench(std::uint32_t pages, std::uint32_t live, std::uint32_t rounds);

// `scxkit run --vm` (run_vm.cpp): the run inside the VM's guest.
struct VmRunRequest {
  std::vector<std::string> guest_args;  // the run's options for the guest's `scxkit run`
  std::vector<std::string> files;       // scenario files (-f), copied in
  std::string scheduler;                // a path or an example's name; "" = the default
  std::vector<std::string> scheduler_args;
  std::string json_path, html_path, scheduler_log;      // host paths
  double scenario_seconds = 0;                          // for the default timeout
  unsigned cpus = 2, memory_mib = 1024, timeout_s = 0;  // 0: from scenario_seconds
  bool quiet = false;
};
int run_in_vm(const VmRunRequest& request);
// A scheduler path as given, or an example's name (fifo, vtime, ...): its
// scx_NAME beside this program in the build tree, installed beside it, or in PATH.
Result<std::string> resolve_scheduler(const std::string& name_or_path);
// The VM runner's progress lines (stderr, on a terminal, unless quiet) and its
// cancel pipe (SIGINT, SIGTERM, SIGHUP), shared by `vm run` and `run --vm`.
vm::ProgressFn vm_progress(bool quiet);
int vm_cancel_fd();

// Prints "scxkit: <message>" on stderr: the one readable line of a failure.
void print_error(const std::string& message);

}  // namespace scxkit::cli
