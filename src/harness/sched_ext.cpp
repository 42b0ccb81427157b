#include "scxkit/sched_ext.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

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
    case ScxExitKind::parent:
      return "PARENT";
    case ScxExitKind::parent_kill:
      return "PARENT_KILL";
    case ScxExitKind::error:
      return "ERROR";
    case ScxExitKind::error_bpf:
      return "ERROR_BPF";
    case ScxExitKind::error_stall:
      return "ERROR_STALL";
    case ScxExitKind::error_reenq:
      return "ERROR_REENQ";
    case ScxExitKind::error_rescue:
      return "ERROR_RESCUE";
  }
  return "UNKNOWN";
}

std::optional<ScxExit> find_scx_exit(std::string_view text) {
  std::optional<ScxExit> last;
  std::string message_prefix;  // "sched_ext: NAME: " of the last exit, for its message line
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const std::size_t tag = line.find("sched_ext: ");
    if (tag == std::string_view::npos) continue;
    if (last && last->message.empty() && !message_prefix.empty() &&
        line.substr(tag).starts_with(message_prefix)) {
      last->message = std::string(line.substr(tag + message_prefix.size()));
      continue;
    }
    const std::size_t open = line.find(" disabled (");
    if (open == std::string_view::npos) continue;
    const std::size_t from = open + 11;
    const std::size_t close = line.rfind(')');
    if (close == std::string_view::npos || close < from) continue;
    ScxExit exit;
    exit.reason = std::string(line.substr(from, close - from));
    exit.line = std::string(line);
    for (const auto& r : kReasons) {
      if (exit.reason == r.text) exit.kind = r.kind;
    }
    // `BPF scheduler "NAME" disabled (...)`: the message line starts "sched_ext: NAME: ".
    const std::size_t q1 = line.find('"', tag), q2 = line.rfind('"', open);
    message_prefix = q1 != std::string_view::npos && q2 != std::string_view::npos && q2 > q1
                         ? "sched_ext: " + std::string(line.substr(q1 + 1, q2 - q1 - 1)) + ": "
                         : std::string();
    last = std::move(exit);
  }
  return last;
}

std::optional<ScxExit> find_loader_exit(std::string_view text) {
  std::optional<ScxExit> last;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const std::size_t at = line.find(": exit kind ");
    const std::size_t reason = line.find("; reason: ");
    const std::size_t message = line.find("; message: ", reason);
    if (at == std::string_view::npos || reason == std::string_view::npos ||
        message == std::string_view::npos || reason < at) {
      continue;
    }
    int kind = 0;
    const char* digits = line.data() + at + 12;
    const auto [ptr, ec] = std::from_chars(digits, line.data() + line.size(), kind);
    if (ec != std::errc() || ptr == digits) continue;
    ScxExit exit;
    exit.kind = static_cast<ScxExitKind>(kind);
    exit.reason = std::string(line.substr(reason + 10, message - reason - 10));
    const std::string_view escaped = line.substr(message + 11);
    for (std::size_t i = 0; i < escaped.size(); ++i) {
      if (escaped[i] == '\\' && i + 1 < escaped.size() && escaped[i + 1] == 'n') {
        exit.message += '\n';
        ++i;
      } else {
        exit.message += escaped[i];
      }
    }
    exit.line = std::string(line);
    last = std::move(exit);
  }
  return last;
}

std::string find_verifier_lines(std::string_view text, std::size_t max_lines) {
  const std::size_t begin = text.rfind("-- BEGIN PROG LOAD LOG --");
  if (begin == std::string_view::npos || max_lines == 0) return {};
  std::string_view log = text.substr(begin);
  log.remove_prefix(std::min(log.find('\n'), log.size() - 1) + 1);
  log = log.substr(0, std::min(log.find("-- END PROG LOAD LOG --"), log.size()));
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start < log.size();) {
    const std::size_t end = std::min(log.find('\n', start), log.size());
    lines.push_back(log.substr(start, end - start));
    start = end + 1;
  }
  // The verifier states its complaint right after the last instruction it
  // walked ("10: (79) r1 = *(u64 *)(r0 +24)"), up to a blank line or its
  // "processed N insns" summary; newer verifiers add a "Verification failed:
  // <class>" line after that.
  const auto is_insn = [](std::string_view l) {
    std::size_t d = 0;
    while (d < l.size() && std::isdigit(static_cast<unsigned char>(l[d])) != 0) ++d;
    return d > 0 && l.substr(d).starts_with(": (");
  };
  std::size_t at = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (is_insn(lines[i])) at = i + 1;
  }
  while (at < lines.size() && lines[at].empty()) ++at;
  std::string out;
  std::size_t taken = 0;
  const auto take = [&](std::string_view l) {
    if (taken++ == 0) {
      out = std::string(l);
    } else {
      out += '\n';
      out += l;
    }
  };
  for (; at < lines.size() && taken < max_lines; ++at) {
    if (lines[at].empty() || lines[at].starts_with("processed ")) break;
    take(lines[at]);
  }
  for (; at < lines.size() && taken < max_lines; ++at) {
    if (lines[at].starts_with("Verification failed")) {
      take(lines[at]);
      break;
    }
  }
  return out;
}

SchedExtStatus read_sched_ext_status(const std::string& root) {
  SchedExtStatus s;
  s.state = first_line(root + "/state", s.present);
  bool ops_readable = false;
  s.ops = first_line(root + "/root/ops", ops_readable);
  return s;
}

}  // namespace scxkit
