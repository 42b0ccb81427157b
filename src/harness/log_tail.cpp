#include "harness/log_tail.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>

#include <fmt/format.h>

namespace scxkit::internal {

Result<AppendLog> open_append_log(const std::string& path) {
  AppendLog log;
  log.fd.reset(
      open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644));
  if (!log.fd) {
    const int err = errno;
    return os_error(fmt::format("cannot open the log {} for writing{}", path,
                                err == ENXIO ? " (a FIFO nobody reads)" : ""),
                    err);
  }
  struct stat st {};
  if (fstat(log.fd.get(), &st) != 0) return os_error(fmt::format("fstat {}", path), errno);
  if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return make_error(Errc::invalid_argument,
                      fmt::format("the log {} is {}, not a file", path,
                                  S_ISFIFO(st.st_mode) ? "a FIFO" : "neither a file nor a device"));
  }
  log.start = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  return log;
}

std::string tail_lines(const std::string& path, std::size_t lines, std::uint64_t from,
                       std::size_t window, std::size_t line_cap) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return {};
  struct stat st {};
  const bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const auto size = regular ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (size <= from) {
    close(fd);
    return {};
  }
  const std::uint64_t start = std::max<std::uint64_t>(from, size > window ? size - window : 0);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n =
        pread(fd, text.data() + got, text.size() - got, static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shrank meanwhile, or an I/O error: show what was read
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  text.resize(got);

  std::string_view rest = text;
  std::uint64_t cut_before = 0;  // bytes of the first line that lie before the window
  if (start > from) {
    // The window starts inside a line: drop that part unless it is all there is.
    const auto nl = rest.find('\n');
    if (nl != std::string_view::npos && nl + 1 < rest.size()) {
      rest.remove_prefix(nl + 1);
    } else {
      cut_before = start - from;
    }
  }
  std::deque<std::string_view> last;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    last.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (last.size() > lines) {
      last.pop_front();
      cut_before = 0;
    }
  }
  std::string out;
  for (std::size_t i = 0; i < last.size(); ++i) {
    const std::string_view l = last[i];
    if (i == 0 && cut_before > 0) out += fmt::format("[{} bytes cut] ", cut_before);
    if (l.size() > line_cap) {
      out += l.substr(0, line_cap);
      out += fmt::format(" [{} bytes cut]", l.size() - line_cap);
    } else {
      out += l;
    }
    out += '\n';
  }
  return out;
}

void append_bounded(std::string& text, std::string_view more, std::size_t cap) {
  if (more.size() >= cap) {
    text.assign(more.substr(more.size() - cap));
  } else {
    text.append(more);
  }
  if (text.size() <= cap) return;
  std::size_t drop = text.size() - cap;
  const auto nl = text.find('\n', drop);
  if (nl != std::string::npos && nl + 1 < text.size()) drop = nl + 1;
  text.erase(0, drop);
}

}  // namespace scxkit::internal
