// The loader's side of cidq's event ring: records the BPF side appends to a
// ring in the arena (cidq.h), read through the loader's mapping of the arena.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cidq.h"
#include "scxkit/cmask.hpp"
#include "scxkit/error.hpp"

namespace scx_cidq {

// The arena as libbpf mapped it into this process, at user_vm_start. Arena
// memory is named by a 32-bit offset, or by its user-form address
// clear_low32(user_vm_start) + offset, which is where this process sees it.
class ArenaMapping {
 public:
  ArenaMapping(std::byte* base, std::size_t size) : base_(base), size_(size) {}
  // The `bytes` bytes at arena address `addr` (either form); an error if any
  // lies outside the mapping.
  scxkit::Result<std::span<std::byte>> at(std::uint64_t addr, std::size_t bytes) const;

 private:
  std::byte* base_;
  std::size_t size_;
};

// One record: what the kernel handed the scheduler for one task.
struct CmaskEvent {
  std::uint64_t seq = 0;  // 1, 2, ... in the order the BPF side claimed them
  unsigned kind = 0;      // enum cidq_event_kind
  int pid = 0;
  int cpu = 0;
  std::uint64_t addr = 0;            // where the kernel built the cmask
  std::vector<std::uint64_t> bytes;  // the copy: header words, then bits

  const char* kind_name() const { return kind == CIDQ_ENABLE ? "enable" : "set_cmask"; }
  // The copy as a cmask, its header checked against its size. Errors: the
  // cmask was too big to copy, or its header is inconsistent.
  scxkit::Result<scxkit::Cmask> mask();
};

class Ring {
 public:
  // `slots` is the ring in the arena, `head` the BPF side's record counter.
  Ring(cidq_record* slots, unsigned long long* head) : slots_(slots), head_(head) {}

  // Records started so far (the next record's seq is head() + 1).
  std::uint64_t head() const;
  // Complete records not yet returned, oldest first, up to (not including)
  // the first one still being written.
  std::vector<CmaskEvent> drain();
  // Records overwritten before they could be read.
  std::uint64_t lost() const { return lost_; }

 private:
  cidq_record* slots_;
  unsigned long long* head_;
  std::uint64_t next_ = 0;  // index of the next record to read
  std::uint64_t lost_ = 0;
};

}  // namespace scx_cidq
