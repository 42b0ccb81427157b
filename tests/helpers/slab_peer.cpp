// A second process for the slab heap sharing tests. Every mode opens the
// ARENA — an emulated arena's name, or "map-id:ID" for a kernel arena map —
// attaches to the heap at ROOT (hex offsets) and prints "ready" on stdout.
//
//   slab_peer swap NAME ROOT BLOCK
//     BLOCK holds {count, offsets[count]} of objects the other process
//     allocated, each word holding its offset ^ 0x5a5a5a5a. Checks and frees
//     every one, then allocates `count` new ones likewise and writes their
//     offsets back. Exit 0 when all of it held.
//   slab_peer stress ARENA ROOT BLOCK THREADS SECONDS SEED RANK
//     Runs the stress workload (alloc/stress.hpp) on the shared block.
//   slab_peer hold ARENA ROOT BLOCK
//     Allocates one object (so the heap has a thread record of this process),
//     writes its offset to BLOCK, says "held" and waits to be killed (at most
//     60 s; then exit 3).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "alloc/stress.hpp"
#include "scxkit/arena.hpp"
#include "scxkit/slab.hpp"

namespace {

std::uint32_t hex(const char* s) {
  return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 16));
}

int swap(scxkit::SlabHeap& heap, std::uint32_t block) {
  scxkit::Arena& a = heap.arena();
  auto* b = static_cast<std::uint32_t*>(a.user_addr(block));
  const std::uint32_t count = b[0];
  for (std::uint32_t i = 0; i < count; ++i) {
    auto* w = static_cast<std::uint32_t*>(a.user_addr(b[1 + i]));
    const std::size_t words = *heap.usable_size(w) / 4;
    for (std::size_t k = 0; k < words; ++k) {
      if (w[k] != (b[1 + i] ^ 0x5a5a5a5a)) return 20;
    }
    if (!heap.free(w)) return 21;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t size = 8 + (i * 40) % 5000;
    auto p = heap.alloc(size);
    if (!p) return 22;
    const std::uint32_t off = scxkit::Arena::offset_of_user(*p);
    auto* w = static_cast<std::uint32_t*>(*p);
    for (std::size_t k = 0; k < *heap.usable_size(w) / 4; ++k) w[k] = off ^ 0x5a5a5a5a;
    b[1 + i] = off;
  }
  return 0;
}

scxkit::Result<scxkit::Arena> open_arena(const std::string& spec) {
  const std::string by_id = "map-id:";
  if (spec.starts_with(by_id)) {
    return scxkit::Arena::open_map_id(
        static_cast<std::uint32_t>(std::strtoul(spec.c_str() + by_id.size(), nullptr, 10)));
  }
  return scxkit::Arena::open(spec);
}

int hold(scxkit::SlabHeap& heap, std::uint32_t block) {
  auto p = heap.alloc(64);
  if (!p) return 30;
  *static_cast<std::uint32_t*>(heap.arena().user_addr(block)) = scxkit::Arena::offset_of_user(*p);
  std::puts("held");
  std::fflush(stdout);
  sleep(60);
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const std::string mode = argv[1];
  auto arena = open_arena(argv[2]);
  if (!arena) return 10;
  auto heap = scxkit::SlabHeap::attach(*arena, hex(argv[3]));
  if (!heap) return 11;
  const std::uint32_t block = hex(argv[4]);
  std::puts("ready");
  std::fflush(stdout);
  if (mode == "swap") return swap(*heap, block);
  if (mode == "hold") return hold(*heap, block);
  if (mode == "stress" && argc == 9) {
    scxkit::internal::stress_run(*heap, scxkit::internal::stress_shared(*heap, block),
                                 static_cast<std::uint32_t>(std::atoi(argv[5])), std::atof(argv[6]),
                                 std::strtoull(argv[7], nullptr, 10),
                                 static_cast<std::uint32_t>(std::atoi(argv[8])));
    return 0;
  }
  return 2;
}
