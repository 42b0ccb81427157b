// The arena's memory file and the processes that use it.
//
// Every open of an arena (create, open by name, open by descriptor) holds a
// shared open-file-description lock on one byte of the file, through an open
// file description of its own. The kernel drops that lock when the last
// descriptor of that description closes: when the user tears down, dies, or
// execs. So "who is alive" needs no pids, no signals and no table a user
// could forge, and a process forked from a user shares its parent's
// description — it is not a user of its own.
//
// A named arena is built in an unnamed file and only then linked to
// /dev/shm/scxkit-arena.NAME, so an open by name sees a complete arena or none.
// A name whose users all died is removed by the next create or open of any
// arena in any process (sweep_dead_names).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "scxkit/error.hpp"

namespace scxkit::internal {

class ArenaFile {
 public:
  // A new memfd (no name) or an unlinked file in /dev/shm (to publish later).
  static Result<ArenaFile> create(bool named);
  // Opens /dev/shm/scxkit-arena.NAME as a user; not_found if it does not
  // exist, or if no live user has it open any more (it is removed then).
  static Result<ArenaFile> open_named(std::string_view name);
  // Becomes a user of the file behind `fd` (taken over); not_found if no live
  // user has it open any more.
  static Result<ArenaFile> adopt(int fd);

  ArenaFile(ArenaFile&& o) noexcept;
  ArenaFile& operator=(ArenaFile&& o) noexcept;
  ~ArenaFile();

  // Links a file from create(true) to its name; already_exists when a live
  // arena has the name (a dead one's name is taken over).
  Result<void> publish(std::string_view name);
  // Whether another user holds the arena open right now.
  bool others_alive() const;
  // Stops being a user. Returns true when this was the last live user; the
  // caller then owns the arena's remains (no new user can join until release()).
  bool leave_as_last();
  // Lets go of everything (after leave_as_last(), of the exclusive claim).
  void release();
  // Removes the arena's name if it still names this file.
  void unlink_name(std::string_view name) const;

  // Excludes a scratch eviction and an allocation replacing the same slot
  // (possibly in two processes). The kernel drops these locks with their
  // holder, so a killed evictor never leaves a slot locked.
  int lock_slots_for_eviction(std::uint32_t first, std::uint32_t count) const noexcept;
  // Both return 0 or an errno value.
  int lock_slots_for_allocation(std::uint32_t first, std::uint32_t count) const noexcept;
  void unlock_slots(bool for_eviction, std::uint32_t first, std::uint32_t count) const noexcept;

  int fd() const { return fd_; }

  // Removes every /dev/shm/scxkit-arena.* name that no live user holds (its
  // users were all killed); never one a live process uses.
  static void sweep_dead_names();

  // "/dev/shm/scxkit-arena.NAME", or invalid_argument for a bad name.
  static Result<std::string> path_of(std::string_view name);

 private:
  ArenaFile() = default;
  Result<void> join();

  int fd_ = -1;        // the data; shared with whoever passed it to us
  int user_fd_ = -1;   // our own open file description: the user lock, eviction locks
  int alloc_fd_ = -1;  // another one, so allocation and eviction in one process conflict
};

}  // namespace scxkit::internal
