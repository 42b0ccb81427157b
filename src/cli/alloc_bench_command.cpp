// `scxkit arena bench alloc`: the slab heap and the pool against glibc
// malloc, mimalloc and jemalloc, side by side in one run.
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli/alloc_peers.hpp"
#include "cli/bench_util.hpp"
#include "cli/commands.hpp"
#include "scxkit/pool.hpp"
#include "scxkit/slab.hpp"

namespace scxkit::cli {

namespace {

// The heap and pool under test, reached from plain functions like the peers.
SlabHeap* g_slab = nullptr;
Pool* g_pool = nullptr;

void* slab_alloc(std::size_t n) {
  auto p = g_slab->alloc(n);
  return p ? *p : nullptr;
}
void slab_free(void* p) {
  (void)g_slab->free(p);
}
void* pool_alloc(std::size_t n) {
  auto p = g_pool->alloc_user(n);
  return p ? *p : nullptr;
}
void pool_free(void* p) {
  (void)g_pool->free_user(p);
}
void* glibc_alloc(std::size_t n) {
  return std::malloc(n);
}
void glibc_free(void* p) {
  std::free(p);
}

// Iterations shrink for the pool, which is two orders of magnitude slower.
std::uint64_t iterations_for(const AllocPeer& peer, std::uint64_t ops) {
  return peer.name == "pool" ? std::max<std::uint64_t>(ops / 50, 100) : ops;
}

// One alloc + touch + free after another: ns per pair.
double single_pairs(const AllocPeer& peer, std::size_t size, std::uint64_t ops) {
  const std::uint64_t n = iterations_for(peer, ops);
  const std::uint64_t t0 = thread_cpu_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    auto* p = static_cast<volatile char*>(peer.alloc(size));
    if (p == nullptr) throw std::runtime_error(peer.name + " failed to allocate");
    p[0] = 1;
    peer.free(const_cast<char*>(p));
  }
  return static_cast<double>(thread_cpu_ns() - t0) / static_cast<double>(n);
}

// A producer thread allocates 64-byte objects and hands them in batches of
// 1024 to a consumer thread that frees them: every free is a cross-thread
// free. Waits block (no CPU time), so the CPU time is the allocator's plus a
// mutex hand-off per batch, the same for every peer.
double producer_consumer(const AllocPeer& peer, std::uint64_t ops) {
  constexpr std::size_t kBatch = 1024, kDepth = 8;
  const std::uint64_t batches = std::max<std::uint64_t>(iterations_for(peer, ops) / kBatch, 1);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<void*>> queue;
  std::atomic<std::uint64_t> consumer_cpu{0};
  std::thread consumer([&] {
    const std::uint64_t c0 = thread_cpu_ns();
    for (std::uint64_t b = 0; b < batches; ++b) {
      std::vector<void*> batch;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !queue.empty(); });
        batch = std::move(queue.front());
        queue.pop_front();
      }
      cv.notify_all();
      for (void* p : batch) peer.free(p);
    }
    consumer_cpu = thread_cpu_ns() - c0;
  });
  const std::uint64_t t0 = thread_cpu_ns();
  for (std::uint64_t b = 0; b < batches; ++b) {
    std::vector<void*> batch(kBatch);
    for (void*& p : batch) {
      p = peer.alloc(64);
      if (p == nullptr) throw std::runtime_error(peer.name + " failed to allocate");
      static_cast<volatile char*>(p)[0] = 1;
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return queue.size() < kDepth; });
      queue.push_back(std::move(batch));
    }
    cv.notify_all();
  }
  const std::uint64_t producer_cpu = thread_cpu_ns() - t0;
  consumer.join();
  return static_cast<double>(producer_cpu + consumer_cpu) / static_cast<double>(batches * kBatch);
}

// Larson-like churn: two threads replace objects of random size (16..512 B,
// fixed seed) in one shared array of slots, so about half the frees are
// cross-thread. ns per replacement (one alloc + one free).
double churn(const AllocPeer& peer, std::uint64_t ops, std::vector<std::atomic<void*>>& slots,
             std::size_t min_size, std::size_t max_size) {
  const std::uint64_t n = iterations_for(peer, ops) / 2;
  std::atomic<std::uint64_t> cpu{0};
  auto work = [&](std::uint64_t seed) {
    const std::uint64_t t0 = thread_cpu_ns();
    std::mt19937_64 rng(seed);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t size = min_size + rng() % (max_size - min_size + 1);
      void* p = peer.alloc(size);
      if (p == nullptr) throw std::runtime_error(peer.name + " failed to allocate");
      static_cast<volatile char*>(p)[0] = 1;
      if (void* old = slots[rng() % slots.size()].exchange(p)) peer.free(old);
    }
    cpu += thread_cpu_ns() - t0;
  };
  std::thread other(work, 2);
  work(1);
  other.join();
  return static_cast<double>(cpu.load()) / static_cast<double>(2 * n);
}

void drain(const AllocPeer& peer, std::vector<std::atomic<void*>>& slots) {
  for (auto& s : slots) {
    if (void* p = s.exchange(nullptr)) peer.free(p);
  }
}

struct Row {
  std::string label;
  std::vector<std::optional<double>> ns;  // per peer; none when unavailable
};

void print_table(const std::string& title, const std::vector<AllocPeer>& peers,
                 const std::vector<Row>& rows) {
  fmt::print("\n{}\n{:<14}", title, "");
  for (const auto& p : peers) fmt::print("{:>20}", p.name);
  fmt::print("\n");
  for (const auto& r : rows) {
    fmt::print("{:<14}", r.label);
    for (std::size_t i = 0; i < peers.size(); ++i) {
      if (!r.ns[i]) {
        fmt::print("{:>20}", "n/a");
      } else if (i == 0) {
        fmt::print("{:>20.1f}", *r.ns[i]);
      } else {
        fmt::print("{:>20}", fmt::format("{:.1f} ({:.2f}x)", *r.ns[i], *r.ns[i] / *r.ns[0]));
      }
    }
    fmt::print("\n");
  }
}

template <class F>
std::optional<double> median_of(const AllocPeer& peer, std::uint32_t reps, F&& f) {
  if (!peer.unavailable.empty()) return std::nullopt;
  std::vector<std::uint64_t> ps;  // picoseconds, for percentile()
  for (std::uint32_t r = 0; r < reps; ++r) ps.push_back(static_cast<std::uint64_t>(f() * 1000));
  return static_cast<double>(percentile(ps, 0.5)) / 1000;
}

// Bytes the arena holds per live byte after 64-byte churn: `live` objects,
// then two threads replacing random ones `ops` times.
double overhead_after_churn(const Arena& arena, const AllocPeer& peer, std::size_t live,
                            std::uint64_t ops) {
  std::vector<std::atomic<void*>> slots(live);
  for (auto& s : slots) s.store(peer.alloc(64));
  churn(peer, ops, slots, 64, 64);
  const double held = static_cast<double>(arena.stats()->allocated_pages) * kPageSize;
  drain(peer, slots);
  return held / static_cast<double>(live * 64);
}

struct AllocBenchOptions {
  std::uint64_t ops = 2'000'000;
  std::uint32_t reps = 7;
  std::uint32_t live = 100'000;
};

int run_alloc_bench(const AllocBenchOptions& o) {
  auto arena = Arena::create({.max_entries = 65536});
  auto pool_arena = Arena::create({.max_entries = 65536});
  if (!arena || !pool_arena) {
    print_error((arena ? pool_arena : arena).error().message);
    return 1;
  }
  auto heap = SlabHeap::create(*arena);
  auto pool = Pool::create(*pool_arena);
  if (!heap || !pool) {
    print_error(heap ? pool.error().message : heap.error().message);
    return 1;
  }
  g_slab = &*heap;
  g_pool = &*pool;
  std::vector<AllocPeer> peers = {{"slab", slab_alloc, slab_free},
                                  {"pool", pool_alloc, pool_free},
                                  {"glibc", glibc_alloc, glibc_free}};
  for (auto& p : library_peers()) peers.push_back(p);
  for (const auto& p : peers) {
    if (!p.unavailable.empty()) fmt::print("{}: not measured: {}\n", p.name, p.unavailable);
  }
  fmt::print(
      "CPU ns per operation (thread CPU time, summed over the threads, so that waiting for a "
      "CPU on a loaded machine does not count), median of {} runs; (Nx) = peer time / slab "
      "time: above 1 means the slab is faster. Every allocator is called through the same "
      "function pointers.\n",
      o.reps);
  try {
    std::vector<Row> rows;
    for (std::size_t size : {16u, 64u, 256u, 1024u}) {
      Row r{fmt::format("{} B", size), {}};
      for (const auto& p : peers) {
        r.ns.push_back(median_of(p, o.reps, [&] { return single_pairs(p, size, o.ops); }));
      }
      rows.push_back(r);
    }
    print_table(fmt::format("single thread: alloc + touch + free pairs ({} per run)", o.ops), peers,
                rows);
    rows.clear();
    Row pc{"64 B", {}};
    for (const auto& p : peers) {
      pc.ns.push_back(median_of(p, o.reps, [&] { return producer_consumer(p, o.ops / 2); }));
    }
    rows.push_back(pc);
    print_table(
        "2 threads: producer allocates 64 B objects, consumer frees them (batches of "
        "1024; ns per object, both threads)",
        peers, rows);
    rows.clear();
    Row ch{"16-512 B", {}};
    std::vector<std::atomic<void*>> slots(o.live / 10);
    for (const auto& p : peers) {
      ch.ns.push_back(median_of(p, o.reps, [&] {
        const double ns = churn(p, o.ops / 2, slots, 16, 512);
        drain(p, slots);
        return ns;
      }));
    }
    rows.push_back(ch);
    print_table(fmt::format("larson-like churn: 2 threads replace random objects among {} "
                            "shared slots (ns per alloc+free)",
                            slots.size()),
                peers, rows);
    // A fresh heap and pool, so that what the runs above left does not count.
    auto fresh = Arena::create({.max_entries = 65536});
    auto fresh_pool_arena = Arena::create({.max_entries = 65536});
    if (!fresh || !fresh_pool_arena) throw std::runtime_error("cannot create an arena");
    auto fresh_heap = SlabHeap::create(*fresh);
    auto fresh_pool = Pool::create(*fresh_pool_arena);
    if (!fresh_heap || !fresh_pool) throw std::runtime_error("cannot create a heap or pool");
    g_slab = &*fresh_heap;
    g_pool = &*fresh_pool;
    const double slab_over = overhead_after_churn(*fresh, peers[0], o.live, o.ops);
    // The pool scans its chunks first fit: a fiftieth of the objects keeps this short.
    const double pool_over = overhead_after_churn(*fresh_pool_arena, peers[1], o.live / 50, o.ops);
    g_slab = &*heap;
    g_pool = &*pool;
    fmt::print(
        "\nmemory after 64 B churn ({} live objects, {} replacements by 2 threads): bytes the "
        "arena holds per live byte\n  slab {:.3f}   pool {:.3f}   (root, page map and slab "
        "headers included; the malloc peers are not arena-backed and are not measured)\n",
        o.live, o.ops, slab_over, pool_over);
    fmt::print("  (the pool kept {} live objects and did {} replacements)\n", o.live / 50,
               o.ops / 50);
  } catch (const std::exception& e) {
    print_error(e.what());
    return 1;
  }
  const SlabStats s = heap->stats();
  if (s.bad_frees != 0) {
    print_error(fmt::format("the slab heap refused {} frees during the benchmark", s.bad_frees));
    return 1;
  }
  return 0;
}

}  // namespace

void add_alloc_bench_command(CLI::App& bench, int& exit_code) {
  static AllocBenchOptions options;
  auto* cmd = bench.add_subcommand(
      "alloc",
      "Slab heap and pool vs glibc malloc, mimalloc, jemalloc: single-thread pairs, "
      "producer/consumer, larson-like churn, memory overhead");
  cmd->add_option("--ops", options.ops, "Operations per run (the pool does 1/50 of them)")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--reps", options.reps, "Runs per measurement; the median is printed")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  cmd->add_option("--live", options.live, "Live objects for the churn and overhead runs")
      ->check(CLI::Range(100u, 5'000'000u))
      ->capture_default_str();
  cmd->callback([&exit_code] {
    reexec_for_jemalloc_if_needed();
    exit_code = run_alloc_bench(options);
  });
}

}  // namespace scxkit::cli
