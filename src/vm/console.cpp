#include "vm/console.hpp"

#include <algorithm>

namespace scxkit::vm::internal {

namespace {

constexpr std::size_t kReportLines = 120;

bool has(std::string_view line, std::string_view what) {
  return line.find(what) != std::string_view::npos;
}

}  // namespace

std::string strip_terminal_codes(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\x1b') {
      // ESC [ params final-byte (CSI), or ESC and one character.
      if (i + 1 < s.size() && s[i + 1] == '[') {
        i += 2;
        while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') continue;
    out.push_back(c);
  }
  return out;
}

std::vector<std::string> ConsoleLog::feed(std::string_view bytes) {
  std::vector<std::string> lines;
  partial_.append(bytes);
  std::size_t start = 0;
  for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = strip_terminal_codes(std::string_view(partial_).substr(start, nl - start));
    add_line(line);
    lines.push_back(std::move(line));
  }
  partial_.erase(0, start);
  return lines;
}

std::vector<std::string> ConsoleLog::flush() {
  if (partial_.empty()) return {};
  std::string line = strip_terminal_codes(partial_);
  partial_.clear();
  add_line(line);
  return {line};
}

void ConsoleLog::add_line(std::string line) {
  const bool panic = has(line, "Kernel panic - not syncing");
  const bool oops = has(line, "Oops:") || has(line, "BUG: ") || has(line, "kernel BUG at") ||
                    has(line, "general protection fault");
  panicked_ = panicked_ || panic;
  oopsed_ = oopsed_ || oops;
  if ((panic || oops) && report_.empty()) {
    // The lines just before often say what triggered it ("sysrq: Trigger a crash").
    const std::size_t context = std::min<std::size_t>(last_.size(), 3);
    report_.assign(last_.end() - static_cast<long>(context), last_.end());
  }
  if ((panic || oops || !report_.empty()) && report_.size() < kReportLines) report_.push_back(line);
  last_.push_back(std::move(line));
  if (last_.size() > keep_) last_.pop_front();
}

}  // namespace scxkit::vm::internal
