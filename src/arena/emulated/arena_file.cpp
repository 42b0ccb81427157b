#include "arena/emulated/arena_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "arena/os.hpp"

namespace scxkit::internal {

namespace {

// Lock bytes far past the data; a lock needs no file content behind it.
constexpr std::uint64_t kUserLockByte = std::uint64_t{1} << 45;
constexpr std::uint64_t kSlotLockBase = std::uint64_t{1} << 46;
constexpr const char* kShmDir = "/dev/shm";

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool same_file(int fd, const std::string& path) {
  struct stat ours {
  }, named{};
  return fstat(fd, &ours) == 0 && stat(path.c_str(), &named) == 0 && ours.st_dev == named.st_dev &&
         ours.st_ino == named.st_ino;
}

}  // namespace

Result<std::string> ArenaFile::path_of(std::string_view name) {
  if (name.empty() || name.size() > 200 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    return make_error(Errc::invalid_argument,
                      fmt::format("arena name '{}' is not valid: use 1-200 characters from "
                                  "[A-Za-z0-9._-]",
                                  name));
  }
  return fmt::format("{}/scxkit-arena.{}", kShmDir, name);
}

ArenaFile::ArenaFile(ArenaFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      user_fd_(std::exchange(o.user_fd_, -1)),
      alloc_fd_(std::exchange(o.alloc_fd_, -1)) {}

ArenaFile& ArenaFile::operator=(ArenaFile&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = std::exchange(o.fd_, -1);
    user_fd_ = std::exchange(o.user_fd_, -1);
    alloc_fd_ = std::exchange(o.alloc_fd_, -1);
  }
  return *this;
}

ArenaFile::~ArenaFile() {
  release();
}

void ArenaFile::release() {
  close_fd(alloc_fd_);
  close_fd(user_fd_);
  close_fd(fd_);
}

Result<void> ArenaFile::join() {
  auto user = os::reopen(fd_);
  if (!user) return tl::unexpected(user.error());
  user_fd_ = *user;
  if (int e = os::ofd_lock(user_fd_, os::LockKind::shared, kUserLockByte, 1, false); e != 0) {
    if (e == EAGAIN || e == EACCES) {
      return make_error(Errc::not_found, "the arena is being destroyed by its last user");
    }
    return os_error("taking the arena's user lock", e);
  }
  auto alloc = os::reopen(fd_);
  if (!alloc) return tl::unexpected(alloc.error());
  alloc_fd_ = *alloc;
  return {};
}

Result<ArenaFile> ArenaFile::create(bool named) {
  ArenaFile f;
  f.fd_ = named ? ::open(kShmDir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)
                : memfd_create("scxkit-arena", MFD_CLOEXEC);
  if (f.fd_ < 0) {
    return os_error(named ? fmt::format("creating an arena file in {}", kShmDir)
                          : std::string("memfd_create for the arena"),
                    errno);
  }
  if (auto r = f.join(); !r) return tl::unexpected(r.error());
  return f;
}

Result<ArenaFile> ArenaFile::adopt(int fd) {
  ArenaFile f;
  f.fd_ = fd;
  if (auto r = f.join(); !r) return tl::unexpected(r.error());
  if (!f.others_alive()) {
    // Every user died or left: joining would resurrect a dead arena.
    f.leave_as_last();
    return make_error(Errc::not_found, "no live user has this arena open any more");
  }
  return f;
}

Result<ArenaFile> ArenaFile::open_named(std::string_view name) {
  auto path = path_of(name);
  if (!path) return tl::unexpected(path.error());
  const int fd = ::open(path->c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    return make_error(Errc::not_found,
                      fmt::format("no arena named '{}' exists; create it first with "
                                  "ArenaOptions::name",
                                  name));
  }
  if (fd < 0) return os_error(fmt::format("opening {}", *path), errno);
  ArenaFile f;
  f.fd_ = fd;
  if (auto r = f.join(); !r) return tl::unexpected(r.error());
  if (!f.others_alive()) {
    if (f.leave_as_last()) f.unlink_name(name);
    return make_error(Errc::not_found,
                      fmt::format("the arena named '{}' has no live user any more (they died "
                                  "without tearing it down); it was removed, create it again",
                                  name));
  }
  return f;
}

Result<void> ArenaFile::publish(std::string_view name) {
  auto path = path_of(name);
  if (!path) return tl::unexpected(path.error());
  const std::string self = fmt::format("/proc/self/fd/{}", fd_);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path->c_str(), AT_SYMLINK_FOLLOW) == 0) return {};
    if (errno != EEXIST) return os_error(fmt::format("naming the arena {}", *path), errno);
    // Taken: by a live arena, or by one whose users all died.
    const int other = ::open(path->c_str(), O_RDWR | O_CLOEXEC);
    if (other < 0) continue;  // removed meanwhile: try again
    const bool alive = os::ofd_lock_conflicts(other, os::LockKind::exclusive, kUserLockByte, 1);
    if (!alive && same_file(other, *path)) ::unlink(path->c_str());
    ::close(other);
    if (alive) {
      return make_error(Errc::already_exists,
                        fmt::format("an arena named '{}' exists already; open it with "
                                    "Arena::open, or choose another name",
                                    name));
    }
  }
  return make_error(Errc::busy, fmt::format("the name '{}' keeps changing hands; retry", name));
}

bool ArenaFile::others_alive() const {
  return os::ofd_lock_conflicts(user_fd_, os::LockKind::exclusive, kUserLockByte, 1);
}

bool ArenaFile::leave_as_last() {
  if (user_fd_ < 0) return false;
  if (os::ofd_lock(user_fd_, os::LockKind::exclusive, kUserLockByte, 1, false) == 0) return true;
  os::ofd_lock(user_fd_, os::LockKind::none, kUserLockByte, 1, false);
  return false;
}

void ArenaFile::unlink_name(std::string_view name) const {
  auto path = path_of(name);
  if (path && same_file(fd_, *path)) ::unlink(path->c_str());
}

int ArenaFile::lock_slots_for_eviction(std::uint32_t first, std::uint32_t count) const noexcept {
  return os::ofd_lock(user_fd_, os::LockKind::exclusive, kSlotLockBase + first, count, false);
}

void ArenaFile::lock_slots_for_allocation(std::uint32_t first, std::uint32_t count) const noexcept {
  os::ofd_lock(alloc_fd_, os::LockKind::exclusive, kSlotLockBase + first, count, true);
}

void ArenaFile::unlock_slots(bool for_eviction, std::uint32_t first,
                             std::uint32_t count) const noexcept {
  os::ofd_lock(for_eviction ? user_fd_ : alloc_fd_, os::LockKind::none, kSlotLockBase + first,
               count, false);
}

}  // namespace scxkit::internal
