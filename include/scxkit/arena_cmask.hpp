// cmasks that live in an arena, carved from a Pool the way the sched_ext
// kernel carves them from its arena pool (kernel/sched/ext/arena.c), and the
// per-CPU set_cmask scratch a cid-form scheduler's kernel side keeps.
//
// The kernel, at scheduler enable, allocates one cmask per possible CPU from
// the scheduler's arena (sized for every cid: window [0, nr_cids)); when a
// task's affinity changes it rebuilds the current CPU's scratch cmask from
// the new cpumask, writing through the arena's kernel view, and hands
// ops_cid.set_cmask() the cmask's arena address — the form BPF code
// dereferences as `struct scx_cmask __arena *`. At disable the scratch goes
// back to the pool. SetCmaskScratch does the same over scxkit's arena.
#pragma once

#include <sched.h>

#include <cstdint>
#include <vector>

#include "scxkit/arena.hpp"
#include "scxkit/cmask.hpp"
#include "scxkit/pool.hpp"
#include "scxkit/topo.hpp"

namespace scxkit {

// A cmask in an arena: its offset and a view through the kernel view.
struct ArenaCmask {
  std::uint32_t offset;
  Cmask mask;
};

// Allocates cmask_bytes(alloc_cids) bytes from `pool` (an allocator over
// `arena`) and writes a cmask for [base, base + nr_cids) there. Errors: those
// of Cmask::init and Pool::alloc.
Result<ArenaCmask> alloc_arena_cmask(Arena& arena, Pool& pool, std::uint32_t base,
                                     std::uint32_t nr_cids, std::uint32_t alloc_cids);

class SetCmaskScratch {
 public:
  // Scheduler enable: one cmask per possible CPU of `table`, window
  // [0, nr_cids), storage for exactly nr_cids cids, from `pool`. On failure
  // everything already allocated goes back to the pool.
  static Result<SetCmaskScratch> create(Arena& arena, Pool& pool, const CidTable& table);
  SetCmaskScratch(SetCmaskScratch&& o) noexcept;
  SetCmaskScratch& operator=(SetCmaskScratch&& o) noexcept;
  SetCmaskScratch(const SetCmaskScratch&) = delete;
  SetCmaskScratch& operator=(const SetCmaskScratch&) = delete;
  ~SetCmaskScratch();

  // Scheduler disable: every scratch cmask back to the pool. Later calls fail
  // cleanly; releasing twice is harmless.
  void release();

  // What the kernel does before ops_cid.set_cmask(): writes `cpus` into the
  // scratch cmask of `cpu` (the CPU running the call) and returns the arena
  // address set_cmask receives — as Debian's 7.3 kernel passes it (seen by
  // examples/cidq), the bare 32-bit arena offset; BPF code dereferences it as
  // any arena pointer, user space at clear_low32(user_vm_start) + offset. One caller per CPU at a
  // time, as the kernel's rq lock guarantees. Errors: cpu not possible, released, or the set names
  // a CPU that is not possible.
  Result<std::uint64_t> build(std::uint32_t cpu, const cpu_set_t& cpus);
  // The arena offset of `cpu`'s scratch cmask.
  Result<std::uint32_t> offset(std::uint32_t cpu) const;

 private:
  SetCmaskScratch(Arena& arena, Pool& pool, CidTable table)
      : arena_(&arena), pool_(&pool), table_(std::move(table)) {}

  Arena* arena_;
  Pool* pool_;
  CidTable table_;
  std::vector<std::uint32_t> offsets_;  // by CPU; 0 for holes in the possible set
};

}  // namespace scxkit
