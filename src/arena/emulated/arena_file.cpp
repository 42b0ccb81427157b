#include "arena/emulated/arena_file.hpp"

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
constexpr std::string_view kNamePrefix = "scxkit-arena.";

void close_fd(int& fd) {
  os::close_fd(fd);
  fd = -1;
}

enum class NameState { gone, alive };

// Removes `path` if no live user holds the arena it names. Every remover of a
// name (this, and the last user at teardown) holds the exclusive user lock
// while it checks that the name still names that file and unlinks it, so a
// name another process has meanwhile given to a new, live arena is never
// removed. A file nobody holds a user lock on has no user: its users all
// died, or it was never an arena.
NameState remove_if_dead(const std::string& path) {
  auto fd = os::open_rw(path);
  if (!fd) return fd.error().sys_errno == ENOENT ? NameState::gone : NameState::alive;
  const bool dead = os::ofd_lock(*fd, os::LockKind::exclusive, kUserLockByte, 1, false) == 0;
  if (dead && os::same_file(*fd, path)) (void)os::unlink_path(path);  // ENOENT: someone else did
  os::close_fd(*fd);                                                  // drops the lock
  return dead ? NameState::gone : NameState::alive;
}

}  // namespace

void ArenaFile::sweep_dead_names() {
  auto names = os::list_dir(kShmDir);
  if (!names) return;  // no /dev/shm: no names to sweep either
  for (const std::string& n : *names) {
    if (n.size() > kNamePrefix.size() && n.compare(0, kNamePrefix.size(), kNamePrefix) == 0) {
      remove_if_dead(fmt::format("{}/{}", kShmDir, n));
    }
  }
}

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
  auto fd = named ? os::create_unnamed(kShmDir) : os::create_memfd("scxkit-arena");
  if (!fd) return tl::unexpected(fd.error());
  f.fd_ = *fd;
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
  auto fd = os::open_rw(*path);
  if (!fd && fd.error().sys_errno == ENOENT) {
    return make_error(Errc::not_found,
                      fmt::format("no arena named '{}' exists; create it first with "
                                  "ArenaOptions::name",
                                  name));
  }
  if (!fd) return tl::unexpected(fd.error());
  ArenaFile f;
  f.fd_ = *fd;
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
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int e = os::link_fd(fd_, *path);
    if (e == 0) return {};
    if (e != EEXIST) return os_error(fmt::format("naming the arena {}", *path), e);
    // Taken: by a live arena, or by one whose users all died (removed here).
    if (remove_if_dead(*path) == NameState::alive) {
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
  // Dropping our shared lock cannot fail for a lock we hold; closing the
  // description (release()) drops it in any case.
  (void)os::ofd_lock(user_fd_, os::LockKind::none, kUserLockByte, 1, false);
  return false;
}

void ArenaFile::unlink_name(std::string_view name) const {
  auto path = path_of(name);
  if (path && os::same_file(fd_, *path)) (void)os::unlink_path(*path);  // ENOENT: already gone
}

int ArenaFile::lock_slots_for_eviction(std::uint32_t first, std::uint32_t count) const noexcept {
  return os::ofd_lock(user_fd_, os::LockKind::exclusive, kSlotLockBase + first, count, false);
}

int ArenaFile::lock_slots_for_allocation(std::uint32_t first, std::uint32_t count) const noexcept {
  return os::ofd_lock(alloc_fd_, os::LockKind::exclusive, kSlotLockBase + first, count, true);
}

void ArenaFile::unlock_slots(bool for_eviction, std::uint32_t first,
                             std::uint32_t count) const noexcept {
  (void)os::ofd_lock(for_eviction ? user_fd_ : alloc_fd_, os::LockKind::none, kSlotLockBase + first,
                     count, false);  // unlocking a lock we hold
}

}  // namespace scxkit::internal
