// Tasks with known CPU sets, and the cmasks the kernel builds for them.
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "cidq_checks.hpp"
#include "scxkit/cpulist.hpp"

namespace scx_cidq {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The callbacks run inside fork() and sched_setaffinity(), so their records
// are normally complete when the call returns; a record another CPU is
// still writing can hold up the ones behind it for a moment.
constexpr auto kRecordDeadline = 10s;
// How long a cmask that reads differently at its arena address may take to
// show the record of the later callback that rebuilt it.
constexpr auto kRebuildDeadline = 2s;

using CpuList = std::vector<std::uint32_t>;

cpu_set_t to_cpu_set(const CpuList& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (std::uint32_t cpu : cpus) CPU_SET(cpu, &set);
  return set;
}

CpuList from_cpu_set(const cpu_set_t& set) {
  CpuList out;
  for (std::uint32_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

// Child processes that wait until the write end of a pipe closes.
class Children {
 public:
  ~Children() { stop(); }
  scxkit::Result<void> open() {
    if (pipe2(fds_, O_CLOEXEC) != 0) return scxkit::os_error("pipe2", errno);
    return {};
  }
  scxkit::Result<pid_t> spawn() {
    const pid_t pid = fork();
    if (pid < 0) return scxkit::os_error("fork", errno);
    if (pid == 0) {
      char c;
      while (read(fds_[0], &c, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    pids_.push_back(pid);
    return pid;
  }
  // Ends every child: EOF on the pipe, then SIGKILL for any still there
  // after a while. Error: a child could not be reaped.
  scxkit::Result<void> stop() {
    for (int& fd : fds_) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    const auto deadline = Clock::now() + 10s;
    std::vector<pid_t> left;
    for (pid_t pid : pids_) {
      while (waitpid(pid, nullptr, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          kill(pid, SIGKILL);
          if (waitpid(pid, nullptr, 0) != pid) left.push_back(pid);
          break;
        }
        std::this_thread::sleep_for(5ms);
      }
    }
    pids_.clear();
    if (!left.empty()) {
      return scxkit::make_error(
          scxkit::Errc::busy, fmt::format("{} child process(es) could not be reaped", left.size()));
    }
    return {};
  }

 private:
  int fds_[2] = {-1, -1};
  std::vector<pid_t> pids_;
};

class Checker {
 public:
  Checker(Ring& ring, const ArenaMapping& arena, const scxkit::CidTable& table)
      : ring_(ring), arena_(arena), table_(table) {}

  // Checks the records `pid` got of `kind` after ring index `after` against
  // `want`: at least one must arrive within the deadline, and each must hold
  // exactly `want` (as BPF copied it, and at its arena address unless the
  // kernel has rebuilt that CPU's scratch cmask since).
  void expect(int pid, unsigned kind, std::uint64_t after, const CpuList& want) {
    const std::uint64_t until = ring_.head();  // records started before the call returned
    const auto deadline = Clock::now() + kRecordDeadline;
    std::vector<std::size_t> hits;
    for (;;) {
      pull();
      hits.clear();
      for (std::size_t i = 0; i < events_.size(); ++i) {
        const CmaskEvent& e = events_[i];
        if (e.seq > after && e.pid == pid && e.kind == kind) hits.push_back(i);
      }
      if (!hits.empty() && read_through_ >= until) break;
      if (Clock::now() > deadline) break;
      std::this_thread::sleep_for(1ms);
    }
    if (hits.empty()) {
      mismatch(fmt::format("pid {}: no {} record within {} s (expected CPUs {})", pid,
                           kind == CIDQ_ENABLE ? "enable" : "set_cmask", kRecordDeadline.count(),
                           scxkit::format_cpulist(want)));
      return;
    }
    for (std::size_t i : hits) check_one(i, want);
  }

  AffinityResult& result() { return result_; }

 private:
  void pull() {
    for (CmaskEvent& e : ring_.drain()) {
      read_through_ = e.seq;
      events_.push_back(std::move(e));
    }
  }

  void mismatch(const std::string& what) {
    fmt::print("scx_cidq: affinity MISMATCH: {}\n", what);
    ++result_.mismatches;
  }

  void check_one(std::size_t index, const CpuList& want) {
    CmaskEvent& e = events_[index];
    (e.kind == CIDQ_ENABLE ? result_.enable : result_.set_cmask)++;
    const std::string who = fmt::format("{} of pid {} on CPU {}", e.kind_name(), e.pid, e.cpu);
    auto mask = e.mask();
    if (!mask) return mismatch(fmt::format("{}: {}", who, mask.error().message));
    // The kernel's scratch: window [0, nr_cids), storage for exactly that.
    const std::uint32_t nr_cids = table_.nr_cids();
    if (mask->base() != 0 || mask->nr_cids() != nr_cids ||
        mask->alloc_words() != scxkit::cmask_nr_words(nr_cids)) {
      return mismatch(fmt::format("{}: header base {} nr_cids {} alloc_words {}, expected 0 {} {}",
                                  who, mask->base(), mask->nr_cids(), mask->alloc_words(), nr_cids,
                                  scxkit::cmask_nr_words(nr_cids)));
    }
    auto cpus = mask->to_cpu_set(table_);
    if (!cpus) return mismatch(fmt::format("{}: {}", who, cpus.error().message));
    const CpuList got = from_cpu_set(*cpus);
    if (got != want) {
      return mismatch(fmt::format("{}: cids {} decode to CPUs {}, the task's CPUs are {}", who,
                                  mask->to_cidlist(), scxkit::format_cpulist(got),
                                  scxkit::format_cpulist(want)));
    }
    check_at_address(index, who);
  }

  // The same bytes, read where the kernel built them.
  void check_at_address(std::size_t index, const std::string& who) {
    const auto size = events_[index].bytes.size() * sizeof(std::uint64_t);
    auto bytes = arena_.at(events_[index].addr, size);
    if (!bytes) return mismatch(fmt::format("{}: {}", who, bytes.error().message));
    if (auto m = scxkit::Cmask::attach(*bytes);
        m && std::memcmp(bytes->data(), events_[index].bytes.data(), size) == 0) {
      ++result_.read_back;
      return;
    }
    // Different now: fine only if the kernel has since built that CPU's
    // scratch cmask for a later callback, whose record then shows up.
    const int cpu = events_[index].cpu;
    const std::uint64_t seq = events_[index].seq;
    const auto deadline = Clock::now() + kRebuildDeadline;
    for (;;) {
      for (const CmaskEvent& later : events_) {
        if (later.seq > seq && later.cpu == cpu) {
          ++result_.rebuilt;
          return;
        }
      }
      if (Clock::now() > deadline) break;
      std::this_thread::sleep_for(1ms);
      pull();
    }
    mismatch(fmt::format("{}: the cmask at its arena address {:#x} differs from what BPF copied",
                         who, events_[index].addr));
  }

  Ring& ring_;
  const ArenaMapping& arena_;
  const scxkit::CidTable& table_;
  std::vector<CmaskEvent> events_;  // every record read so far
  std::uint64_t read_through_ = 0;  // seq of the last one
  AffinityResult result_;
};

// A random non-empty subset of `online` other than `not_this` (when there is one).
CpuList random_set(std::mt19937& rng, const CpuList& online, const CpuList& not_this) {
  for (;;) {
    CpuList s;
    for (std::uint32_t cpu : online) {
      if (rng() & 1) s.push_back(cpu);
    }
    if (!s.empty() && (s != not_this || online.size() == 1)) return s;
  }
}

scxkit::Result<void> set_affinity(pid_t pid, const CpuList& cpus) {
  const cpu_set_t set = to_cpu_set(cpus);
  if (sched_setaffinity(pid, sizeof(set), &set) != 0) {
    return scxkit::os_error(
        fmt::format("sched_setaffinity({}, {})", pid, scxkit::format_cpulist(cpus)), errno);
  }
  return {};
}

}  // namespace

scxkit::Result<AffinityResult> check_affinity(Ring& ring, const ArenaMapping& arena,
                                              const scxkit::CidTable& table, const CpuList& online,
                                              const AffinityOptions& options) {
  Checker check(ring, arena, table);
  Children children;
  if (auto ok = children.open(); !ok) return tl::unexpected(ok.error());
  std::mt19937 rng(options.seed);
  const pid_t self = getpid();

  // Children inherit this process's set: the kernel builds it for enable().
  struct Task {
    pid_t pid;
    CpuList cpus;
  };
  std::vector<Task> tasks;
  CpuList mine = online;
  for (unsigned i = 0; i < options.tasks; ++i) {
    const CpuList cpus = random_set(rng, online, mine);
    std::uint64_t before = ring.head();
    if (auto ok = set_affinity(0, cpus); !ok) return tl::unexpected(ok.error());
    if (cpus != mine) check.expect(self, CIDQ_SET_CMASK, before, cpus);
    mine = cpus;
    before = ring.head();
    auto pid = children.spawn();
    if (!pid) return tl::unexpected(pid.error());
    check.expect(*pid, CIDQ_ENABLE, before, cpus);
    check.expect(*pid, CIDQ_SET_CMASK, before, cpus);  // the kernel follows enable() with it
    tasks.push_back({*pid, cpus});
  }
  if (mine != online) {
    const std::uint64_t before = ring.head();
    if (auto ok = set_affinity(0, online); !ok) return tl::unexpected(ok.error());
    check.expect(self, CIDQ_SET_CMASK, before, online);
  }

  // Each change the kernel applies (a set other than the current one) calls set_cmask().
  for (unsigned round = 0; round < options.rounds && online.size() > 1; ++round) {
    for (Task& t : tasks) {
      const CpuList cpus = random_set(rng, online, t.cpus);
      const std::uint64_t before = ring.head();
      if (auto ok = set_affinity(t.pid, cpus); !ok) return tl::unexpected(ok.error());
      check.expect(t.pid, CIDQ_SET_CMASK, before, cpus);
      t.cpus = cpus;
    }
  }
  if (auto ok = children.stop(); !ok) return tl::unexpected(ok.error());
  check.result().tasks = options.tasks;
  return check.result();
}

}  // namespace scx_cidq
