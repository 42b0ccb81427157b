#include "workload/worker_process.hpp"

#include <dirent.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "workload/work_loops.hpp"

namespace scxkit::internal {

namespace {

// What a freshly forked child does first: die with the runner, join the run's
// group, forget the runner's signal handlers.
void become_run_member(pid_t runner, pid_t pgid) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != runner) _exit(111);  // the runner died before prctl took effect
  if (pgid > 0) setpgid(0, pgid);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> tids;
  DIR* dir = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (dir == nullptr) return tids;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  closedir(dir);
  return tids;
}

// Applies `op` to every thread; a thread that exited meanwhile is no error.
template <class Op>
Result<void> for_each_thread(pid_t pid, const char* what, Op op) {
  const auto tids = threads_of(pid);
  if (tids.empty()) return make_error(Errc::not_found, fmt::format("worker {} is gone", pid));
  for (pid_t tid : tids) {
    if (op(tid) != 0 && errno != ESRCH) return os_error(fmt::format("{} of {}", what, tid), errno);
  }
  return {};
}

long futex_shared(std::atomic<std::uint32_t>* word, int op, std::uint32_t val,
                  const timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, timeout, nullptr, 0);
}

}  // namespace

Result<SharedRegion> SharedRegion::map(std::size_t capacity) {
  const std::size_t bytes = SharedStats::bytes_for(capacity);
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return os_error("mapping the workers' shared statistics", errno);
  SharedStats(base).header().capacity = static_cast<std::uint32_t>(capacity);
  return SharedRegion(base, bytes, capacity);
}

SharedRegion::SharedRegion(SharedRegion&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), bytes_(o.bytes_), capacity_(o.capacity_) {}

SharedRegion::~SharedRegion() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

Result<ProcessGroup> ProcessGroup::create() {
  // Orphans of workers (fork-churn children) are reparented here and reaped.
  auto hold = SubreaperHold::acquire();
  if (!hold) return tl::unexpected(hold.error());
  const pid_t runner = getpid();
  const pid_t pid = fork();
  if (pid < 0) return os_error("fork (the run's process group anchor)", errno);
  if (pid == 0) {
    become_run_member(runner, 0);
    setpgid(0, 0);
    for (;;) pause();
  }
  setpgid(pid, pid);  // also here, so the group exists before the first worker joins
  auto anchor = ChildProcess::adopt(pid, true);
  if (!anchor) return tl::unexpected(anchor.error());
  return ProcessGroup(std::move(*hold), std::move(*anchor));
}

bool ProcessGroup::kill_and_reap(std::chrono::milliseconds deadline) {
  return anchor_.kill_and_reap_group(Clock::now() + deadline);
}

Result<pid_t> fork_worker(const WorkerSpec& spec, const SharedStats& stats, std::size_t slot,
                          const ProcessGroup& group) {
  const pid_t runner = getpid();
  const pid_t pid = fork();
  if (pid < 0) return os_error(fmt::format("fork (worker {})", spec.name), errno);
  if (pid == 0) {
    become_run_member(runner, group.pgid());
    WorkerSlot& s = stats.slot(slot);
    s.ready.store(1, std::memory_order_release);
    const timespec second{1, 0};
    while (s.go.load(std::memory_order_acquire) == 0) {
      futex_shared(&s.go, FUTEX_WAIT, 0, &second);
    }
    run_work(spec, s, stats.header());
    _exit(1);  // the loop only returns when it cannot run; `failure` says why
  }
  setpgid(pid, group.pgid());
  return pid;
}

Result<void> wait_ready(const SharedStats& stats, std::size_t slot, pid_t pid,
                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (stats.slot(slot).ready.load(std::memory_order_acquire) == 0) {
    if (Clock::now() >= deadline) {
      return make_error(Errc::busy, fmt::format("worker {} did not reach its start barrier within "
                                                "{} ms (is the machine overloaded?)",
                                                pid, timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return {};
}

void release(const SharedStats& stats, std::size_t slot) {
  WorkerSlot& s = stats.slot(slot);
  s.go.store(1, std::memory_order_release);
  futex_shared(&s.go, FUTEX_WAKE, 1, nullptr);
}

Result<void> set_affinity(pid_t pid, const CpuSet& cpus) {
  const cpu_set_t native = cpus.to_native();
  return for_each_thread(pid, "sched_setaffinity", [&](pid_t tid) {
    return sched_setaffinity(tid, sizeof(native), &native);
  });
}

Result<void> set_nice(pid_t pid, int nice) {
  return for_each_thread(pid, "setpriority", [&](pid_t tid) {
    return setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice);
  });
}

Result<void> set_fifo(pid_t pid, int priority, std::chrono::milliseconds cpu_limit) {
  const rlim_t us = static_cast<rlim_t>(cpu_limit.count()) * 1000;
  const rlimit limit{us, us};  // soft == hard: SIGKILL at the limit, no SIGXCPU core
  if (prlimit(pid, RLIMIT_RTTIME, &limit, nullptr) != 0) {
    return os_error(fmt::format("prlimit RLIMIT_RTTIME of {}", pid), errno);
  }
  const sched_param param{priority};
  auto ok = for_each_thread(pid, "sched_setscheduler SCHED_FIFO",
                            [&](pid_t tid) { return sched_setscheduler(tid, SCHED_FIFO, &param); });
  if (!ok && ok.error().sys_errno == EPERM) {
    ok.error().message +=
        " (with RT group scheduling a real-time task needs a cpu cgroup with cpu.rt_runtime_us > "
        "0: keep real-time workers out of scenarios that set cgroup weights)";
  }
  return ok;
}

std::optional<unsigned> read_procs_running() {
  std::ifstream stat("/proc/stat");
  std::string key;
  while (stat >> key) {
    if (key == "procs_running") {
      unsigned n = 0;
      if (stat >> n) return n;
      return std::nullopt;
    }
    stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

std::vector<double> read_cpu_busy() {
  std::ifstream stat("/proc/stat");
  std::vector<double> busy;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::string line;
  while (std::getline(stat, line)) {
    if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 ||
        !std::isdigit(static_cast<unsigned char>(line[3])))
      continue;  // the "cpu" total line, or not a CPU line
    unsigned cpu = 0;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    if (std::sscanf(line.c_str(), "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user,
                    &nice, &system, &idle, &iowait, &irq, &softirq, &steal) != 9) {
      continue;
    }
    if (cpu >= busy.size()) busy.resize(cpu + 1, 0);
    busy[cpu] = static_cast<double>(user + nice + system + irq + softirq + steal) / hz;
  }
  return busy;
}

TaskStats read_task_stats(pid_t pid, bool with_migrations) {
  TaskStats total;
  for (pid_t tid : threads_of(pid)) {
    std::ifstream schedstat(fmt::format("/proc/{}/task/{}/schedstat", pid, tid));
    std::uint64_t cpu = 0, wait = 0;
    if (!(schedstat >> cpu >> wait)) continue;
    total.cpu_ns += cpu;
    total.wait_ns += wait;
    if (!with_migrations) continue;
    std::ifstream sched(fmt::format("/proc/{}/task/{}/sched", pid, tid));
    std::string line;
    while (std::getline(sched, line)) {
      if (line.rfind("se.nr_migrations", 0) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos) total.migrations += std::stoull(line.substr(colon + 1));
        break;
      }
    }
  }
  return total;
}

}  // namespace scxkit::internal
