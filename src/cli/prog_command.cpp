// `scxkit prog stderr|stdout --id N`: what a loaded BPF program wrote to its
// streams (Linux 6.17+). Reading consumes what was read.
#include <fmt/format.h>

#include "bpf/bpf_objects.hpp"
#include "bpf/bpf_syscall.hpp"
#include "cli/commands.hpp"

namespace scxkit::cli {

namespace {

int run_read(std::uint32_t id, bpf::ProgStream stream) {
  auto fd = bpf::open_prog_by_id(id);
  if (!fd) {
    print_error(fd.error().message);
    return 1;
  }
  auto text = bpf::read_prog_stream(fd->get(), stream);
  if (!text) {
    print_error(text.error().message);
    return 1;
  }
  fmt::print("{}", *text);
  return 0;
}

}  // namespace

void add_prog_command(CLI::App& app, int& exit_code) {
  auto* prog = app.add_subcommand("prog", "Look at loaded BPF programs");
  prog->require_subcommand(1);
  static std::uint32_t id = 0;
  for (const auto& [name, stream] :
       {std::pair{"stderr", bpf::ProgStream::err}, std::pair{"stdout", bpf::ProgStream::out}}) {
    auto* cmd = prog->add_subcommand(
        name, fmt::format("Print and consume what a BPF program wrote to its {} stream", name));
    cmd->add_option("--id", id, "The program's id (bpftool prog list)")->required();
    cmd->callback([&exit_code, s = stream] { exit_code = run_read(id, s); });
  }
}

}  // namespace scxkit::cli
