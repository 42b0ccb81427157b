// A lock in arena memory that any process mapping the arena can take, and
// that survives its holder's death: the word holds the holder's ProcessId
// (pid and start time, so a pid reused by another process does not keep a
// dead holder's lock), and a waiter that finds the holder gone takes the lock
// over and is told so, to repair what the lock protects. Works on any shared
// mapping (a real BPF arena included), unlike a futex-backed robust mutex.
// Critical sections are short list edits, so waiters spin, then sleep.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/process.hpp"
#include "scxkit/error.hpp"

namespace scxkit::internal {

enum class LockTaken { clean, from_dead_holder };

// Errc::busy when a live holder keeps it for longer than `deadline_ns`.
Result<LockTaken> shared_lock(std::atomic<std::uint64_t>& word, ProcessId self,
                              std::uint64_t deadline_ns = 10'000'000'000ull);
void shared_unlock(std::atomic<std::uint64_t>& word);

}  // namespace scxkit::internal
