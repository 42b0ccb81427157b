// The checks `scx_cidq --check-cids --check-affinity N` runs against the
// kernel it is attached to. Each prints what differs and counts it.
#pragma once

#include <cstdint>
#include <vector>

#include "cidq.h"
#include "cidq_ring.hpp"
#include "scxkit/error.hpp"
#include "scxkit/topo.hpp"

namespace scx_cidq {

// Prints the kernel's cid table (read by ops.init) and every field where
// scxkit's table for this machine differs; returns the number of differences.
unsigned compare_cid_tables(const cidq_cid_table& kernel, const scxkit::CidTable& ours);

struct AffinityOptions {
  unsigned tasks = 8;   // child processes
  unsigned rounds = 4;  // affinity changes per child
  unsigned seed = 1;    // for the random CPU sets
};

struct AffinityResult {
  unsigned tasks = 0;
  unsigned enable = 0;     // enable() cmasks checked
  unsigned set_cmask = 0;  // set_cmask() cmasks checked
  unsigned read_back = 0;  // also equal at their arena address, read from here
  unsigned rebuilt = 0;    // rebuilt by the kernel for a later task before they could be read
  unsigned mismatches = 0;
};

// Forks `tasks` children, each with a random CPU set inherited from this
// process (the kernel calls enable() with it), then gives each `rounds` other
// random sets with sched_setaffinity() (the kernel calls set_cmask()). Every
// cmask the kernel built for these tasks, and for this process's own changes,
// is decoded with scxkit's Cmask through `table` and compared with the set it
// must hold, as BPF copied it and at its arena address. Error: the children
// could not be started or stopped.
scxkit::Result<AffinityResult> check_affinity(Ring& ring, const ArenaMapping& arena,
                                              const scxkit::CidTable& table,
                                              const std::vector<std::uint32_t>& online,
                                              const AffinityOptions& options);

}  // namespace scx_cidq
