// Worker processes, from the runner's side: fork one into the run's process
// group behind a start barrier, release it once it is placed, place it
// (affinity, nice, SCHED_FIFO with a CPU-time bound), read its scheduler
// statistics from /proc, kill it. Internal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "harness/child_process.hpp"
#include "scxkit/cpu_set.hpp"
#include "scxkit/error.hpp"
#include "scxkit/scenario.hpp"
#include "workload/shared_stats.hpp"

namespace scxkit::internal {

// The shared region, mapped before any fork so every worker inherits it.
class SharedRegion {
 public:
  static Result<SharedRegion> map(std::size_t capacity);
  SharedRegion(SharedRegion&& o) noexcept;
  SharedRegion& operator=(SharedRegion&&) = delete;
  ~SharedRegion();
  SharedStats stats() const { return SharedStats(base_); }
  std::size_t capacity() const { return capacity_; }

 private:
  SharedRegion(void* base, std::size_t bytes, std::size_t capacity)
      : base_(base), bytes_(bytes), capacity_(capacity) {}
  void* base_;
  std::size_t bytes_, capacity_;
};

// The run's process group: an anchor child that only waits (and dies with the
// runner), whose group every worker joins, so that one kill(-pgid) reaches
// workers and whatever they forked, and exactly they are reaped (the runner is
// a child subreaper, so orphans of workers are its children too).
class ProcessGroup {
 public:
  static Result<ProcessGroup> create();
  pid_t pgid() const { return anchor_.pid(); }
  // SIGKILLs the whole group and reaps it; false if members were still there
  // at the deadline. The destructor does the same.
  bool kill_and_reap(std::chrono::milliseconds deadline);

 private:
  ProcessGroup(SubreaperHold hold, ChildProcess anchor)
      : hold_(std::move(hold)), anchor_(std::move(anchor)) {}
  SubreaperHold hold_;  // released after the anchor's group is reaped
  ChildProcess anchor_;
};

// Forks a worker for slot `slot`: it joins `group`, dies with the runner
// (PR_SET_PDEATHSIG), marks itself ready and waits at the barrier.
Result<pid_t> fork_worker(const WorkerSpec& spec, const SharedStats& stats, std::size_t slot,
                          const ProcessGroup& group);
// Waits (bounded) until the worker reached its barrier.
Result<void> wait_ready(const SharedStats& stats, std::size_t slot, pid_t pid,
                        std::chrono::milliseconds timeout);
void release(const SharedStats& stats, std::size_t slot);

// Placement, applied to every thread of `pid`.
Result<void> set_affinity(pid_t pid, const CpuSet& cpus);
Result<void> set_nice(pid_t pid, int nice);
// SCHED_FIFO at `priority`, with RLIMIT_RTTIME so the kernel kills it if it
// spins past `cpu_limit` without the runner having stopped it.
Result<void> set_fifo(pid_t pid, int priority, std::chrono::milliseconds cpu_limit);

struct TaskStats {
  std::uint64_t cpu_ns = 0;      // time on a CPU (schedstat)
  std::uint64_t wait_ns = 0;     // time runnable, waiting on a run queue (schedstat)
  std::uint64_t migrations = 0;  // se.nr_migrations, where /proc/<pid>/sched exists
};
// Summed over the threads of `pid`. Migrations are read only when asked:
// /proc/<pid>/sched is long, and the runner needs them once, at the end.
TaskStats read_task_stats(pid_t pid, bool with_migrations);

// Tasks runnable on the machine now (/proc/stat procs_running, the caller
// included); none if unreadable.
std::optional<unsigned> read_procs_running();
// Seconds each CPU spent busy since boot (/proc/stat cpuN: user, nice,
// system, irq, softirq, steal), indexed by CPU number; empty if unreadable.
std::vector<double> read_cpu_busy();

}  // namespace scxkit::internal
