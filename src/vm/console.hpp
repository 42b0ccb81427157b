// The guest's serial console (its kernel log): cut into clean lines, the
// last ones kept for error reports, Oops and panic reports recognised.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace scxkit::vm::internal {

// Removes terminal control sequences (SeaBIOS clears the screen) and other
// control characters except tab.
std::string strip_terminal_codes(std::string_view text);

class ConsoleLog {
 public:
  ConsoleLog() = default;
  explicit ConsoleLog(std::size_t keep_lines) : keep_(keep_lines) {}

  // Feeds raw console bytes; returns the lines completed by them.
  std::vector<std::string> feed(std::string_view bytes);
  // The unterminated rest, as a line (at the end of the stream).
  std::vector<std::string> flush();

  bool panicked() const { return panicked_; }
  bool oopsed() const { return oopsed_; }
  // From the first Oops/BUG/panic line on (bounded), or empty.
  const std::vector<std::string>& report() const { return report_; }
  std::vector<std::string> last_lines() const { return {last_.begin(), last_.end()}; }

 private:
  void add_line(std::string line);
  std::size_t keep_ = 40;
  std::string partial_;
  std::deque<std::string> last_;
  std::vector<std::string> report_;
  bool panicked_ = false, oopsed_ = false;
};

}  // namespace scxkit::vm::internal
