#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "scxkit/doctor.hpp"

namespace scxkit::cli {

void add_doctor_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("doctor", "Tell what this host can do: one line per capability");
  static bool json = false;
  static DoctorOptions options;
  cmd->add_flag("--json", json, "Print one JSON object instead of lines");
  cmd->add_option("--sched-ext-root", options.sched_ext_root, "The sched_ext sysfs directory")
      ->capture_default_str();
  cmd->callback([&exit_code] {
    const auto caps = probe_host(options);
    if (json) {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& c : caps) out[c.name] = {{"available", c.available}, {"reason", c.reason}};
      fmt::print("{}\n", out.dump(2));
    } else {
      for (const auto& c : caps) {
        fmt::print("{:<16} {:<3}  {}\n", c.name, c.available ? "yes" : "no", c.reason);
      }
    }
    exit_code = 0;  // a missing capability is a finding, not a failure
  });
}

}  // namespace scxkit::cli
