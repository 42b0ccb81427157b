// scxkit arena fault-bench: the cost of recovering stray kernel-view accesses
// against ordinary first-touch page faults, in one run.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "cli/bench_util.hpp"
#include "cli/commands.hpp"
#include "scxkit/program.hpp"

namespace scxkit::cli {

namespace {

int mapping_count() {
  std::ifstream maps("/proc/self/maps");
  return static_cast<int>(
      std::count(std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>(), '\n'));
}

// One timed write to each page from `base` on.
std::vector<std::uint64_t> touch_each(void* base, std::uint64_t pages, const char* what) {
  std::vector<std::uint64_t> ns(pages);
  auto* p = static_cast<volatile char*>(base);
  for (std::uint64_t i = 0; i < pages; ++i) {
    const auto t0 = Clock::now();
    p[i * kPageSize] = 1;
    ns[i] = ns_since(t0);
    if (i % 65536 == 0 || i + 1 == pages) progress(what, i + 1, pages);
  }
  return ns;
}

// First touch of each page of a fresh mapping.
std::vector<std::uint64_t> first_touch(int fd, std::uint64_t pages, const char* what) {
  const std::size_t bytes = pages * kPageSize;
  void* m = fd < 0
                ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  auto ns = touch_each(m, pages, what);
  munmap(m, bytes);
  return ns;
}

}  // namespace

int run_fault_bench(std::uint32_t pages) {
  auto arena = Arena::create({.max_entries = kMaxArenaPages});
  if (!arena) {
    print_error(arena.error().message);
    return 1;
  }
  Program prog("fault-bench", &*arena, 1 << 20);
  const int maps_before = mapping_count();
  std::vector<std::uint64_t> stray(pages);
  std::uint64_t reports = 0;
  auto* kern = static_cast<volatile char*>(arena->kern_addr(0));
  {
    ProgramScope scope(prog);
    for (std::uint32_t p = 0; p < pages; ++p) {
      const auto t0 = Clock::now();
      (void)kern[std::uint64_t{p} * kPageSize];
      stray[p] = ns_since(t0);
      if (p % 16384 == 16383 || p + 1 == pages) {
        const std::string text = prog.stream(StreamId::err).read_all();
        reports += static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
        progress("stray accesses", p + 1, pages);
      }
    }
  }
  const int maps_after = mapping_count();
  // The most recent scratch pages are still backed: touching them again is a plain load.
  const std::uint32_t again = std::min<std::uint32_t>(pages, 16384);
  std::uint64_t again_ns = 0;
  {
    ProgramScope scope(prog);
    const auto t0 = Clock::now();
    for (std::uint32_t p = pages - again; p < pages; ++p) (void)kern[std::uint64_t{p} * kPageSize];
    again_ns = ns_since(t0);
  }
  const std::uint64_t peer_pages = std::min<std::uint64_t>(pages, 262144);
  const auto anon = first_touch(-1, peer_pages, "anonymous first touch");
  const int memfd = memfd_create("fault-bench-peer", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, static_cast<off_t>(peer_pages * kPageSize)) != 0) {
    print_error("memfd for the shared-memory peer failed");
    return 1;
  }
  const auto shmem = first_touch(memfd, peer_pages, "shmem first touch");
  close(memfd);
  // The arena's own user view: pages allocated up front, and pages never
  // allocated (a lazy allocation through the view server).
  auto user = Arena::create({.max_entries = static_cast<std::uint32_t>(2 * peer_pages)});
  if (!user) {
    print_error(user.error().message);
    return 1;
  }
  auto allocated = user->alloc_pages(nullptr, static_cast<std::uint32_t>(peer_pages));
  if (!allocated) {
    print_error(allocated.error().message);
    return 1;
  }
  const auto arena_touch = touch_each(*allocated, peer_pages, "arena first touch");
  const auto lazy = touch_each(static_cast<char*>(*allocated) + peer_pages * kPageSize, peer_pages,
                               "arena lazy first touch");

  const auto row = [](const char* what, const std::vector<std::uint64_t>& v) {
    fmt::print("{:<40} {:>10.2f} {:>10.2f}\n", what, percentile(v, 0.5) / 1e3,
               percentile(v, 0.99) / 1e3);
  };
  fmt::print("{:<40} {:>10} {:>10}\n", "access", "median us", "p99 us");
  row(fmt::format("stray access, first ({} pages)", pages).c_str(), stray);
  fmt::print("{:<40} {:>10.3f}\n", "stray access, page already scratched", again_ns / 1e3 / again);
  row(fmt::format("anonymous first touch ({} pages)", peer_pages).c_str(), anon);
  row(fmt::format("shmem first touch ({} pages)", peer_pages).c_str(), shmem);
  row("arena user view, allocated, first touch", arena_touch);
  row("arena user view, lazy allocation", lazy);
  fmt::print("ratio stray/anonymous first touch: {:.2f}x (median), stray/shmem: {:.2f}x\n",
             static_cast<double>(percentile(stray, 0.5)) / percentile(anon, 0.5),
             static_cast<double>(percentile(stray, 0.5)) / percentile(shmem, 0.5));
  fmt::print(
      "violations reported {} + dropped {} of {}; scratch pages {}; mappings {} before, {} "
      "after; arena memory {} MiB\n",
      reports, prog.stream(StreamId::err).dropped(), pages, arena->stats()->scratch_pages,
      maps_before, maps_after, arena_resident_mib(*arena));
  return reports + prog.stream(StreamId::err).dropped() == pages ? 0 : 1;
}

}  // namespace scxkit::cli
