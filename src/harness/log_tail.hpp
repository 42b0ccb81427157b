// Bounded reads of logs a scheduler (or the kernel) writes: however big a log
// or a single line grows, the harness reads and keeps only a capped amount
// from its end. Internal to the harness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.hpp"
#include "scxkit/error.hpp"

namespace scxkit::internal {

inline constexpr std::size_t kLogWindow = 64 * 1024;  // bytes read from a log's end
inline constexpr std::size_t kLogLineCap = 2000;      // bytes kept of one line

// The last `lines` lines of what a regular file holds past byte `from`, read
// from at most the last `window` bytes; a line longer than `line_cap` is cut
// ("… [N bytes cut]"). "" if unreadable or not a regular file (never blocks).
std::string tail_lines(const std::string& path, std::size_t lines, std::uint64_t from = 0,
                       std::size_t window = kLogWindow, std::size_t line_cap = kLogLineCap);

// A log a scheduler's output is appended to, and the size it had when opened:
// this run's part starts there.
struct AppendLog {
  UniqueFd fd;
  std::uint64_t start = 0;
};
// Opens (creating 0644) `path` for appending, never blocking: only a regular
// file or a character device (/dev/null) is accepted — a FIFO, socket or
// directory is refused with a message saying what it is.
Result<AppendLog> open_append_log(const std::string& path);

// Appends `more` to `text`, then keeps only its last `cap` bytes (from a line
// start where there is one).
void append_bounded(std::string& text, std::string_view more, std::size_t cap = kLogWindow);

}  // namespace scxkit::internal
