// Each subcommand registers itself on the root app; its callback stores the
// process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

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

// Prints "scxkit: <message>" on stderr: the one readable line of a failure.
void print_error(const std::string& message);

}  // namespace scxkit::cli
