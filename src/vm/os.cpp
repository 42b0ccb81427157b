#include "vm/os.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

namespace scxkit::vm::internal {

int poll_ms_until(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

Result<void> write_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      const int ms = poll_ms_until(deadline);
      if (ms == 0) return make_error(Errc::busy, "writing: the reader did not keep up in time");
      if (::poll(&p, 1, ms) < 0 && errno != EINTR) return os_error("poll for writing", errno);
      continue;
    }
    return os_error("write", n < 0 ? errno : EIO);
  }
  return {};
}

Result<std::string> read_some(int fd, std::size_t max, bool* eof) {
  std::string buf(max, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      *eof = false;
      return std::string();
    }
    // A reset connection (the peer died) is the end of the stream.
    if (n < 0 && errno == ECONNRESET) {
      *eof = true;
      return std::string();
    }
    if (n < 0) return os_error("read", errno);
    *eof = n == 0;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }
}

Result<void> set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return os_error("fcntl", errno);
  return {};
}

Result<std::pair<Fd, Fd>> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return os_error("socketpair", errno);
  }
  return std::pair<Fd, Fd>(Fd(sv[0]), Fd(sv[1]));
}

Result<std::pair<Fd, Fd>> pipe_pair() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return os_error("pipe2", errno);
  return std::pair<Fd, Fd>(Fd(p[0]), Fd(p[1]));
}

Result<Fd> memory_file(const char* name) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return os_error("memfd_create", errno);
  return Fd(fd);
}

Result<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return os_error(fmt::format("opening {}", path), errno);
  std::string out;
  for (;;) {
    bool eof = false;
    auto chunk = read_some(fd.get(), 1 << 20, &eof);
    if (!chunk) return tl::unexpected(chunk.error());
    out += *chunk;
    if (eof) return out;
  }
}

Result<void> write_file(const std::string& path, std::string_view data, unsigned mode) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (fd.get() < 0) return os_error(fmt::format("creating {}", path), errno);
  return write_all(fd.get(), data);
}

}  // namespace scxkit::vm::internal
