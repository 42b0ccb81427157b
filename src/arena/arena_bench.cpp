// Google Benchmark: arena page alloc+free against mmap/munmap, side by side.
//   ./build/release/arena_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <sys/mman.h>

#include <benchmark/benchmark.h>

#include "scxkit/arena.hpp"

namespace {

void BM_ArenaAllocFree(benchmark::State& state) {
  const auto pages = static_cast<std::uint32_t>(state.range(0));
  auto arena = scxkit::Arena::create({.max_entries = 4096});
  if (!arena) {
    state.SkipWithError(arena.error().message.c_str());
    return;
  }
  for (auto _ : state) {
    auto p = arena->alloc_pages(nullptr, pages);
    benchmark::DoNotOptimize(p);
    (void)arena->free_pages(*p, pages);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MmapMunmap(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0)) * scxkit::kPageSize;
  for (auto _ : state) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    benchmark::DoNotOptimize(p);
    munmap(p, bytes);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ArenaAllocFree)->Arg(1)->Arg(16)->Arg(512);
BENCHMARK(BM_MmapMunmap)->Arg(1)->Arg(16)->Arg(512);

}  // namespace
