#include "harness/kernel_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <fmt/format.h>

#include "harness/unique_fd.hpp"

namespace scxkit::internal {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

Result<std::string> read_kernel_file(const std::string& path, std::size_t max_bytes) {
  UniqueFd f(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!f) return os_error(fmt::format("opening {}", path), errno);
  struct stat st {};
  if (fstat(f.get(), &st) != 0) return os_error(fmt::format("fstat {}", path), errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::invalid_argument, fmt::format("{} is {}, not a kernel attribute file",
                                                          path, file_kind(st.st_mode)));
  }
  std::string out;
  char buf[4096];
  while (out.size() < max_bytes) {
    const ssize_t n = read(f.get(), buf, std::min(sizeof(buf), max_bytes - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error(fmt::format("reading {}", path), errno);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

Result<void> write_kernel_file(const std::string& path, std::string_view text) {
  UniqueFd f(open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!f) return os_error(fmt::format("opening {}", path), errno);
  ssize_t n;
  do {
    n = write(f.get(), text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return os_error(fmt::format("writing '{}' to {}", text, path), errno);
  if (static_cast<std::size_t>(n) != text.size()) {
    return make_error(Errc::system_error, fmt::format("short write of '{}' to {}", text, path));
  }
  return {};
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  auto text = read_kernel_file(fmt::format("/proc/{}/stat", pid), 4096);
  if (!text) return std::nullopt;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
  const auto close_paren = text->rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  ProcStat st;
  int ppid = 0;
  unsigned long long start = 0;
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
  // cstime priority nice num_threads itrealvalue starttime
  if (std::sscanf(text->c_str() + close_paren + 1,
                  " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                  &st.state, &ppid, &start) != 3) {
    return std::nullopt;
  }
  st.ppid = ppid;
  st.start_ticks = start;
  return st;
}

}  // namespace scxkit::internal
