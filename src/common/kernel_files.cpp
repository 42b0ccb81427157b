#include "common/kernel_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/unique_fd.hpp"

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

}  // namespace scxkit::internal
