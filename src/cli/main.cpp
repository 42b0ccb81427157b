#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.hpp"

namespace scxkit::cli {
void print_error(const std::string& message) {
  fmt::print(stderr, "scxkit: {}\n", message);
}
}  // namespace scxkit::cli

int main(int argc, char** argv) {
  CLI::App app{"scxkit — BPF arenas for C++ and a test harness for sched_ext schedulers"};
  app.require_subcommand(1);
  int exit_code = 0;
  scxkit::cli::add_doctor_command(app, exit_code);
  scxkit::cli::add_arena_command(app, exit_code);
  scxkit::cli::add_sched_command(app, exit_code);
  scxkit::cli::add_topo_command(app, exit_code);
  scxkit::cli::add_prog_command(app, exit_code);
  scxkit::cli::add_run_commands(app, exit_code);
  scxkit::cli::add_run_bench_command(app, exit_code);
  scxkit::cli::add_vm_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    scxkit::cli::print_error(fmt::format("{} (see --help)", e.what()));
    return 2;
  }
  return exit_code;
}
