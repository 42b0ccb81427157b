#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/bench_util.hpp"
#include "cli/commands.hpp"
#include "scxkit/arena.hpp"
#include "scxkit/arena_ptr.hpp"

namespace scxkit::cli {

namespace {

void touch_pages(void* base, std::uint64_t pages, const char* what) {
  auto* p = static_cast<volatile char*>(base);
  for (std::uint64_t i = 0; i < pages; ++i) {
    p[i * kPageSize] = 1;
    if (i % 65536 == 0 || i + 1 == pages) progress(what, i + 1, pages);
  }
}

int run_demo() {
  struct Task {
    int pid;
    ArenaPtr<Task> next;
  };
  auto arena = Arena::create({.max_entries = 256});
  if (!arena) {
    print_error(arena.error().message);
    return 1;
  }
  Arena& a = *arena;
  fmt::print("arena: {} pages; user view 0x{:x}..0x{:x}; kernel view at kern_vm_start 0x{:x}\n",
             a.max_entries(), a.user_vm_start(), a.user_vm_end(), a.kern_vm_start());
  auto page = a.alloc_pages(nullptr, 1);
  if (!page) {
    print_error(page.error().message);
    return 1;
  }
  // A linked list built with 32-bit arena pointers through the user view...
  auto* tasks = static_cast<Task*>(*page);
  for (int i = 0; i < 4; ++i) {
    tasks[i].pid = 100 + i;
    tasks[i].next = i < 3 ? ArenaPtr<Task>::from(a.user_view(), &tasks[i + 1]) : ArenaPtr<Task>();
  }
  // ...walked through the kernel view, as a BPF program would.
  std::string walk;
  for (Task* t = ArenaPtr<Task>::from(a.user_view(), tasks).in(*a.kern_view()); t != nullptr;
       t = t->next.in(*a.kern_view())) {
    walk += fmt::format(" {}", t->pid);
  }
  fmt::print("alloc_pages(1) -> 0x{:x} (offset 0x{:x}); list walked in the kernel view:{}\n",
             reinterpret_cast<std::uintptr_t>(*page), Arena::offset_of_user(*page), walk);
  auto* lazy = static_cast<char*>(a.user_addr(Arena::offset_of_user(*page) + 10 * kPageSize));
  lazy[0] = 'x';
  fmt::print("touching an unallocated page from user space allocated it lazily: {} lazy page(s)\n",
             a.stats()->lazy_pages);
  if (auto r = a.free_pages(*page, 1); !r) {
    print_error(r.error().message);
    return 1;
  }
  const ArenaStats s = *a.stats();
  fmt::print("after free_pages: {} allocated, {} free in {} extent(s)\n", s.allocated_pages,
             s.free_pages, s.free_extents);
  return 0;
}

struct PagesBenchOptions {
  std::uint32_t iterations = 2000;
  std::uint32_t teardown_pages = 1'000'000;
  std::string backend = "emulated";
};

// Latency of one alloc + touch + free cycle per page count for each arena
// backend asked for and for mmap, interleaved so all see the same machine noise.
void bench_alloc_free(const std::vector<std::pair<const char*, Arena*>>& arenas,
                      const PagesBenchOptions& o) {
  fmt::print("{:>6}", "pages");
  for (const auto& [name, arena] : arenas)
    fmt::print(" {:>15} {:>9}", name + std::string(" med us"), "p99 us");
  fmt::print(" {:>15} {:>9}", "mmap med us", "p99 us");
  for (const auto& [name, arena] : arenas) fmt::print(" {:>13}", name + std::string("/mmap"));
  if (arenas.size() == 2) fmt::print(" {:>16}", "emulated/kernel");
  fmt::print("\n");
  for (std::uint32_t pages : {1u, 16u, 512u}) {
    const std::uint32_t iters = pages == 512 ? std::max(o.iterations / 10, 20u) : o.iterations;
    std::vector<std::vector<std::uint64_t>> arena_ns(arenas.size());
    std::vector<std::uint64_t> mmap_ns;
    const std::size_t bytes = std::size_t{pages} * kPageSize;
    for (std::uint32_t i = 0; i < iters; ++i) {
      for (std::size_t k = 0; k < arenas.size(); ++k) {
        Arena& a = *arenas[k].second;
        const auto t0 = Clock::now();
        auto p = a.alloc_pages(nullptr, pages);
        if (!p) throw std::runtime_error(p.error().message);
        touch_pages(*p, pages, "");
        (void)a.free_pages(*p, pages);
        arena_ns[k].push_back(ns_since(t0));
      }
      const auto t0 = Clock::now();
      void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      touch_pages(m, pages, "");
      munmap(m, bytes);
      mmap_ns.push_back(ns_since(t0));
    }
    std::vector<double> med;
    fmt::print("{:>6}", pages);
    for (auto& ns : arena_ns) {
      med.push_back(percentile(ns, 0.5) / 1e3);
      fmt::print(" {:>15.2f} {:>9.2f}", med.back(), percentile(ns, 0.99) / 1e3);
    }
    const double mm = percentile(mmap_ns, 0.5) / 1e3;
    fmt::print(" {:>15.2f} {:>9.2f}", mm, percentile(mmap_ns, 0.99) / 1e3);
    for (double m : med) fmt::print(" {:>12.2f}x", m / mm);
    if (med.size() == 2) fmt::print(" {:>15.2f}x", med[0] / med[1]);
    fmt::print("\n");
  }
  fmt::print(
      "(alloc_pages + touch every page + free_pages vs mmap + touch + munmap; "
      "ratios of medians)\n");
}

// Another user of the same arena allocating and freeing one page while a huge
// range is freed; the longest it waits is the pause others feel.
struct Prober {
  Arena& arena;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> worst_ns{0}, ops{0};
  std::thread thread;

  explicit Prober(Arena& a) : arena(a) {
    thread = std::thread([this] {
      while (!stop) {
        const auto t0 = Clock::now();
        auto p = arena.alloc_pages(nullptr, 1);
        if (p) {
          static_cast<char*>(*p)[0] = 1;
          (void)arena.free_pages(*p, 1);
        }
        worst_ns = std::max(worst_ns.load(), ns_since(t0));
        ++ops;
      }
    });
  }
  void finish() {
    stop = true;
    thread.join();
  }
};

int bench_teardown(const PagesBenchOptions& o) {
  const std::uint32_t pages = o.teardown_pages;
  const std::uint32_t spare = 4096;  // room for the prober
  auto arena = Arena::create({.max_entries = std::min(kMaxArenaPages, pages + spare)});
  if (!arena) {
    print_error(arena.error().message);
    return 1;
  }
  auto fill = [&]() -> Result<void*> {
    auto p = arena->alloc_pages(nullptr, pages);
    if (p) touch_pages(*p, pages, "touching pages");
    return p;
  };
  auto p = fill();
  if (!p) {
    print_error(p.error().message);
    return 1;
  }
  {
    Prober prober(*arena);
    const auto t0 = Clock::now();
    auto r = arena->free_pages(*p, pages);
    const std::uint64_t total = ns_since(t0);
    prober.finish();
    if (!r) {
      print_error(r.error().message);
      return 1;
    }
    const PauseStats s = *r;
    fmt::print(
        "free_pages({} touched pages): {:.1f} ms in {} chunks; longest lock hold {:.1f} us, "
        "{} over 1 ms; a concurrent user's longest alloc+free {:.1f} us over {} ops\n",
        pages, total / 1e6, s.chunks, s.longest_pause_ns / 1e3, s.pauses_over_1ms,
        prober.worst_ns / 1e3, prober.ops.load());
  }
  p = fill();
  if (!p) {
    print_error(p.error().message);
    return 1;
  }
  // Teardown of the full arena while another arena in this process stays busy:
  // its page faults need the mmap lock that unmapping takes.
  auto other = Arena::create({.max_entries = spare});
  if (!other) {
    print_error(other.error().message);
    return 1;
  }
  Prober prober(*other);
  const auto t0 = Clock::now();
  const PauseStats s = arena->teardown();
  const std::uint64_t total = ns_since(t0);
  prober.finish();
  fmt::print(
      "teardown({} allocated pages): {:.1f} ms in {} chunks; longest pause {:.1f} us, "
      "{} over 1 ms; another arena's longest alloc+touch+free meanwhile {:.1f} us over {} "
      "ops\n",
      pages, total / 1e6, s.chunks, s.longest_pause_ns / 1e3, s.pauses_over_1ms,
      prober.worst_ns / 1e3, prober.ops.load());
  return 0;
}

int run_pages_bench(const PagesBenchOptions& o) {
  // Emulated first, so a two-backend run prints emulated/kernel.
  std::vector<Arena> arenas;
  std::vector<std::pair<const char*, Arena*>> named;
  for (ArenaBackend b : {ArenaBackend::emulated, ArenaBackend::kernel}) {
    const bool wanted =
        o.backend == "both" || (o.backend == "kernel") == (b == ArenaBackend::kernel);
    if (!wanted) continue;
    auto arena = Arena::create({.max_entries = 4096, .backend = b});
    if (!arena) {
      print_error(fmt::format("{} arena: {}", b == ArenaBackend::kernel ? "kernel" : "emulated",
                              arena.error().message));
      return 1;
    }
    arenas.push_back(std::move(*arena));
  }
  for (Arena& a : arenas) {
    named.emplace_back(a.backend() == ArenaBackend::kernel ? "kernel" : "emulated", &a);
  }
  try {
    bench_alloc_free(named, o);
  } catch (const std::exception& e) {
    print_error(e.what());
    return 1;
  }
  if (o.teardown_pages == 0) return 0;
  if (o.backend == "kernel") {
    fmt::print("(huge free and teardown pauses: emulated backend only)\n");
    return 0;
  }
  return bench_teardown(o);
}

}  // namespace

void add_arena_command(CLI::App& app, int& exit_code) {
  auto* arena = app.add_subcommand("arena", "Work with emulated and kernel BPF arenas");
  arena->require_subcommand(1);
  add_arena_show_command(arena, exit_code);
  arena->add_subcommand("demo", "Walk through an arena: views, typed pointers, lazy faults")
      ->callback([&exit_code] { exit_code = run_demo(); });
  auto* bench = arena->add_subcommand("bench", "Measure the arena against its peers");
  bench->require_subcommand(1);
  static PagesBenchOptions pages_options;
  auto* pages = bench->add_subcommand(
      "pages",
      "Page alloc+touch+free latency per backend vs mmap/munmap, and the longest pause "
      "of a huge free and of teardown");
  pages->add_option("--iterations", pages_options.iterations, "Cycles per page count")
      ->check(CLI::Range(10u, 10'000'000u))
      ->capture_default_str();
  pages
      ->add_option("--teardown-pages", pages_options.teardown_pages,
                   "Pages allocated and touched before the huge free and teardown (0: skip)")
      ->check(CLI::Range(0u, kMaxArenaPages - 4096))
      ->capture_default_str();
  pages
      ->add_option("--backend", pages_options.backend,
                   "Arena backend(s) to measure: emulated, kernel (a real BPF arena: root, "
                   "Linux 6.9+) or both side by side")
      ->check(CLI::IsMember({"emulated", "kernel", "both"}))
      ->capture_default_str();
  pages->callback([&exit_code] { exit_code = run_pages_bench(pages_options); });
  add_alloc_bench_command(*bench, exit_code);
  add_alloc_stress_command(*arena, exit_code);
  static std::uint32_t life_pages = 16, life_live = 50, life_rounds = 10;
  auto* life = bench->add_subcommand(
      "lifecycle",
      "What one arena costs to exist: create and destroy time, page tables, against a plain "
      "memfd mapping of the same size");
  life->add_option("--pages", life_pages, "max_entries of each arena")
      ->check(CLI::Range(1u, kMaxArenaPages))
      ->capture_default_str();
  life->add_option("--live", life_live, "Arenas alive at once")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  life->add_option("--rounds", life_rounds, "Times they are all created and destroyed")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  life->callback(
      [&exit_code] { exit_code = run_lifecycle_bench(life_pages, life_live, life_rounds); });
  static std::uint32_t fault_pages = 1'000'000;
  auto* fault = arena->add_subcommand(
      "fault-bench",
      "Cost of recovering stray kernel-view accesses with scratch, against ordinary "
      "first-touch page faults, and the mappings held before and after");
  fault->add_option("--pages", fault_pages, "Distinct stray pages to touch")
      ->check(CLI::Range(1u, kMaxArenaPages))
      ->capture_default_str();
  fault->callback([&exit_code] { exit_code = run_fault_bench(fault_pages); });
}

}  // namespace scxkit::cli
