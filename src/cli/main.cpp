#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/commands.hpp"

namespace scxkit::cli {
void print_error(const std::string& message) {
  // Never throws: with stderr closed or full there is no one left to tell,
  // and the exit code still says it failed.
  const std::string line = fmt::format("scxkit: {}\n", message);
  (void)std::fwrite(line.data(), 1, line.size(), stderr);
}
}  // namespace scxkit::cli

namespace {

int run(int argc, char** argv) {
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

}  // namespace

int main(int argc, char** argv) {
  // A command's output can fail too (fmt::print throws when stdout is closed
  // or its disk is full): one line and a failing exit code, never an abort.
  int rc = 1;
  try {
    rc = run(argc, argv);
  } catch (const std::exception& e) {
    scxkit::cli::print_error(fmt::format("cannot go on: {}", e.what()));
    return 1;
  }
  // Buffered output fails only when flushed: say so rather than exit 0.
  if (std::fflush(stdout) != 0) {
    scxkit::cli::print_error(fmt::format("writing the output failed: {}", std::strerror(errno)));
    return rc != 0 ? rc : 1;
  }
  return rc;
}
