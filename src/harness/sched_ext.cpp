#include "scxkit/sched_ext.hpp"

#include <array>

#include "common/kernel_files.hpp"

namespace scxkit {

namespace {

// Through the never-blocking reader: a FIFO planted as `state` or `root/ops`
// counts as unreadable instead of hanging the harness in open().
std::string first_line(const std::string& path, bool& readable) {
  auto text = internal::read_kernel_file(path, 4096);
  readable = text.has_value();
  if (!text) return {};
  std::string line = text->substr(0, text->find('\n'));
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

struct Reason {
  std::string_view text;
  ScxExitKind kind;
};
// scx_exit_reason() across kernel versions; "BPF scheduler unregistered" is
// the pre-6.12 wording of UNREG.
constexpr std::array<Reason, 9> kReasons{{
    {"unregistered from user space", ScxExitKind::unreg},
    {"unregistered from BPF", ScxExitKind::unreg_bpf},
    {"unregistered from the main kernel", ScxExitKind::unreg_kern},
    {"BPF scheduler unregistered", ScxExitKind::unreg},
    {"disabled by sysrq-S", ScxExitKind::sysrq},
    {"runtime error", ScxExitKind::error},
    {"scx_bpf_error", ScxExitKind::error_bpf},
    {"runnable task stall", ScxExitKind::error_stall},
    {"<UNKNOWN>", ScxExitKind::none},
}};

}  // namespace

std::string_view to_string(ScxExitKind kind) {
  switch (kind) {
    case ScxExitKind::none:
      return "NONE";
    case ScxExitKind::done:
      return "DONE";
    case ScxExitKind::unreg:
      return "UNREG";
    case ScxExitKind::unreg_bpf:
      return "UNREG_BPF";
    case ScxExitKind::unreg_kern:
      return "UNREG_KERN";
    case ScxExitKind::sysrq:
      return "SYSRQ";
    case ScxExitKind::error:
      return "ERROR";
    case ScxExitKind::error_bpf:
      return "ERROR_BPF";
    case ScxExitKind::error_stall:
      return "ERROR_STALL";
  }
  return "UNKNOWN";
}

std::optional<ScxExit> find_scx_exit(std::string_view text) {
  std::optional<ScxExit> last;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.find("sched_ext:") == std::string_view::npos) continue;
    const std::size_t open = line.find(" disabled (");
    if (open == std::string_view::npos) continue;
    const std::size_t from = open + 11;
    const std::size_t close = line.find(')', from);
    if (close == std::string_view::npos) continue;
    ScxExit exit;
    exit.reason = std::string(line.substr(from, close - from));
    exit.line = std::string(line);
    for (const auto& r : kReasons) {
      if (exit.reason == r.text) exit.kind = r.kind;
    }
    last = std::move(exit);
  }
  return last;
}

SchedExtStatus read_sched_ext_status(const std::string& root) {
  SchedExtStatus s;
  s.state = first_line(root + "/state", s.present);
  bool ops_readable = false;
  s.ops = first_line(root + "/root/ops", ops_readable);
  return s;
}

}  // namespace scxkit
