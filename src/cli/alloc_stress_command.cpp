// `scxkit arena stress`: the larson-style stress of alloc/stress.hpp on one
// slab heap, from several threads and optionally several processes (this
// program re-executed as hidden `arena stress-worker` processes that open the
// arena by name).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "alloc/stress.hpp"
#include "cli/bench_util.hpp"
#include "cli/commands.hpp"
#include "scxkit/slab.hpp"

namespace scxkit::cli {

namespace {

struct StressOptions {
  std::uint32_t threads = 2;
  double seconds = 10;
  std::uint32_t processes = 1;
  std::uint64_t seed = 1;
  std::uint32_t slots = 4096;
  bool debug = false;
};

struct WorkerOptions {
  std::string name;
  std::string root, block;  // hex offsets
  std::uint32_t threads = 1, rank = 1;
  double seconds = 1;
  std::uint64_t seed = 1;
};

pid_t spawn_worker(const std::string& name, const SlabHeap& heap, std::uint32_t block,
                   const StressOptions& o, std::uint32_t rank) {
  const std::vector<std::string> args = {"scxkit",
                                         "arena",
                                         "stress-worker",
                                         name,
                                         fmt::format("{:x}", heap.root_offset()),
                                         fmt::format("{:x}", block),
                                         std::to_string(o.threads),
                                         fmt::format("{}", o.seconds),
                                         std::to_string(o.seed),
                                         std::to_string(rank)};
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  return pid;
}

// Exit status of a worker, killing it when it overstays its deadline.
int reap(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_stress(const StressOptions& o) {
  const std::string name = fmt::format("scxkit-stress.{}", getpid());
  auto arena = Arena::create({.max_entries = 262144, .name = o.processes > 1 ? name : ""});
  if (!arena) {
    print_error(arena.error().message);
    return 1;
  }
  auto heap = SlabHeap::create(*arena, {.debug = o.debug});
  if (!heap) {
    print_error(heap.error().message);
    return 1;
  }
  auto block = internal::stress_setup(*heap, o.slots);
  if (!block) {
    print_error(block.error().message);
    return 1;
  }
  std::vector<pid_t> workers;
  for (std::uint32_t rank = 1; rank < o.processes; ++rank) {
    const pid_t pid = spawn_worker(name, *heap, *block, o, rank);
    if (pid < 0) {
      print_error("fork failed; try fewer --processes");
      return 1;
    }
    workers.push_back(pid);
  }
  const auto t0 = Clock::now();
  internal::stress_run(*heap, internal::stress_shared(*heap, *block), o.threads, o.seconds, o.seed,
                       0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::uint32_t failed_workers = 0;
  for (pid_t pid : workers) failed_workers += reap(pid, deadline) != 0 ? 1 : 0;
  const double secs = static_cast<double>(ns_since(t0)) / 1e9;
  const internal::StressReport r = internal::stress_finish(*heap, *block);
  const SlabStats s = heap->stats();
  fmt::print(
      "stress: {} process(es) x {} thread(s), {:.1f} s, seed {}{}: {} operations ({:.2f} M/s), "
      "corruptions {}, refused frees {}, failed allocations (arena full) {}\n"
      "after: {} slab(s) held ({} of them empty, kept for reuse) and {} large "
      "allocation(s); {} slabs created, {} released\n",
      o.processes, o.threads, secs, o.seed, o.debug ? ", debug mode" : "", r.ops,
      static_cast<double>(r.ops) / secs / 1e6, r.corruptions, s.bad_frees, r.failed_allocs, s.slabs,
      s.empty_slabs_kept, s.large_allocations, s.slabs_created, s.slabs_released);
  if (o.debug) fmt::print("debug: {} writes to freed memory found\n", s.pattern_violations);
  if (failed_workers != 0) {
    print_error(fmt::format("{} worker process(es) failed or overstayed", failed_workers));
    return 1;
  }
  if (r.corruptions != 0 || s.bad_frees != 0 || s.pattern_violations != 0) {
    print_error(fmt::format("{} corruption(s) found", r.corruptions + s.pattern_violations));
    return 1;
  }
  return 0;
}

int run_worker(const WorkerOptions& w) {
  auto arena = Arena::open(w.name);
  if (!arena) {
    print_error(arena.error().message);
    return 1;
  }
  auto heap = SlabHeap::attach(*arena, static_cast<std::uint32_t>(std::stoul(w.root, nullptr, 16)));
  if (!heap) {
    print_error(heap.error().message);
    return 1;
  }
  const auto block = static_cast<std::uint32_t>(std::stoul(w.block, nullptr, 16));
  internal::stress_run(*heap, internal::stress_shared(*heap, block), w.threads, w.seconds, w.seed,
                       w.rank);
  return 0;
}

}  // namespace

void add_alloc_stress_command(CLI::App& arena, int& exit_code) {
  static StressOptions o;
  auto* cmd = arena.add_subcommand(
      "stress",
      "Larson-style stress of the slab heap: threads (and processes) hand objects to each "
      "other, every word checked before free");
  cmd->add_option("--threads", o.threads, "Threads per process")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  cmd->add_option("--seconds", o.seconds, "How long to run")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--processes", o.processes, "Processes sharing the heap (this one included)")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the random sizes and slots")->capture_default_str();
  cmd->add_option("--slots", o.slots, "Shared slots objects are handed through")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  cmd->add_flag("--debug", o.debug, "Run the heap in debug mode (pattern-filled freed memory)");
  cmd->callback([&exit_code] { exit_code = run_stress(o); });

  static WorkerOptions w;
  auto* worker = arena.add_subcommand("stress-worker", "A stress process (internal)");
  worker->group("");  // hidden: started by `arena stress --processes`
  worker->add_option("name", w.name)->required();
  worker->add_option("root", w.root)->required();
  worker->add_option("block", w.block)->required();
  worker->add_option("threads", w.threads)->required();
  worker->add_option("seconds", w.seconds)->required();
  worker->add_option("seed", w.seed)->required();
  worker->add_option("rank", w.rank)->required();
  worker->callback([&exit_code] { exit_code = run_worker(w); });
}

}  // namespace scxkit::cli
