// scxkit arena bench lifecycle: what one arena costs to exist — create and
// destroy time, page tables while it lives — against a plain shared-memory
// mapping of the same user size, in one run.
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include <fmt/format.h>

#include "arena/os.hpp"
#include "cli/bench_util.hpp"
#include "cli/commands.hpp"

namespace scxkit::cli {

namespace {

struct Costs {
  std::vector<std::uint64_t> create_ns, destroy_ns;
  std::uint64_t page_tables_per_object = 0;
};

// `live` objects exist at once (their page tables are measured), created and
// destroyed `rounds` times; each touches its first page once.
template <class Make, class Touch, class Destroy>
Costs measure(std::uint32_t live, std::uint32_t rounds, Make make, Touch touch, Destroy destroy) {
  Costs c;
  for (std::uint32_t r = 0; r < rounds; ++r) {
    const std::uint64_t before = internal::os::page_table_bytes();
    std::vector<decltype(make())> objects;
    for (std::uint32_t i = 0; i < live; ++i) {
      const auto t0 = Clock::now();
      objects.push_back(make());
      c.create_ns.push_back(ns_since(t0));
      touch(objects.back());
    }
    const std::uint64_t after = internal::os::page_table_bytes();
    c.page_tables_per_object = std::max(c.page_tables_per_object, (after - before) / live);
    for (auto& o : objects) {
      const auto t0 = Clock::now();
      destroy(o);
      c.destroy_ns.push_back(ns_since(t0));
    }
  }
  return c;
}

}  // namespace

int run_lifecycle_bench(std::uint32_t pages, std::uint32_t live, std::uint32_t rounds) {
  const std::size_t bytes = std::size_t{pages} * kPageSize;
  std::string failure;
  const Costs arena = measure(
      live, rounds,
      [&] {
        auto a = Arena::create({.max_entries = pages});
        if (!a && failure.empty()) failure = a.error().message;
        return a;
      },
      [](Result<Arena>& a) {
        if (!a) return;
        auto p = a->alloc_pages(nullptr, 1);
        if (p) static_cast<volatile char*>(*p)[0] = 1;
      },
      [](Result<Arena>& a) {
        if (a) a->teardown();
      });
  if (!failure.empty()) {
    print_error(failure);
    return 1;
  }
  struct Mapping {
    int fd;
    void* p;
  };
  const Costs shm = measure(
      live, rounds,
      [&] {
        Mapping m{memfd_create("peer", MFD_CLOEXEC), MAP_FAILED};
        if (m.fd >= 0 && ftruncate(m.fd, static_cast<off_t>(bytes)) == 0) {
          m.p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
        }
        return m;
      },
      [](Mapping& m) {
        if (m.p != MAP_FAILED) static_cast<volatile char*>(m.p)[0] = 1;
      },
      [&](Mapping& m) {
        if (m.p != MAP_FAILED) munmap(m.p, bytes);
        if (m.fd >= 0) close(m.fd);
      });
  fmt::print("{:<28} {:>14} {:>14} {:>20}\n", "", "create med us", "destroy med us",
             "page tables / object");
  const auto row = [](const char* what, const Costs& c) {
    fmt::print("{:<28} {:>14.1f} {:>14.1f} {:>17.1f} KiB\n", what,
               percentile(c.create_ns, 0.5) / 1e3, percentile(c.destroy_ns, 0.5) / 1e3,
               c.page_tables_per_object / 1024.0);
  };
  row(fmt::format("arena, {} pages", pages).c_str(), arena);
  row(fmt::format("memfd + mmap, {} pages", pages).c_str(), shm);
  fmt::print(
      "({} objects alive at once, {} rounds; each touches one page; ratio create {:.1f}x, "
      "destroy {:.1f}x)\n",
      live, rounds,
      static_cast<double>(percentile(arena.create_ns, 0.5)) /
          static_cast<double>(std::max<std::uint64_t>(percentile(shm.create_ns, 0.5), 1)),
      static_cast<double>(percentile(arena.destroy_ns, 0.5)) /
          static_cast<double>(std::max<std::uint64_t>(percentile(shm.destroy_ns, 0.5), 1)));
  return 0;
}

}  // namespace scxkit::cli
