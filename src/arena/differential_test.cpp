// The kernel is the reference: random sequences of page operations run on a
// real BPF arena and on the emulation side by side, and every result must be
// the same — where pages go, which calls fail and how, what a user-view touch
// reads and whether it faults.
//
//   SCXKIT_DIFF_SEED=N  replays one run (the seed is printed on any failure)
//   SCXKIT_DIFF_OPS=N   operations in all (default 100,000; 10,000 under
//                       sanitizers, where every operation is ~10x slower)
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "arena/test_support.hpp"

namespace scxkit {
namespace {

using internal::testing_support::create_on;
using internal::testing_support::free_aligned_address;
using internal::testing_support::kSanitizerBuild;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

struct Config {
  std::uint32_t pages;
  bool segv_on_fault;
  bool aligned;  // user_vm_start on a 4 GiB boundary: page 0 is offset 0
};

enum class Op { alloc_any, alloc_at, free, reserve, touch };

struct Step {
  Op op;
  std::uint32_t page;  // from user_vm_start
  std::uint32_t count;
  std::string describe() const {
    static const char* names[] = {"alloc_pages(NULL, {1})", "alloc_pages(page {0}, {1})",
                                  "free_pages(page {0}, {1})", "reserve_pages(page {0}, {1})",
                                  "touch(page {0})"};
    return fmt::format(fmt::runtime(names[static_cast<int>(op)]), page, count);
  }
};

// One backend's side of the run.
class Side {
 public:
  explicit Side(Arena a) : arena_(std::move(a)) {}
  Arena& arena() { return arena_; }

  std::string run(const Step& s, bool segv_on_fault, std::uint8_t marker) {
    switch (s.op) {
      case Op::alloc_any:
      case Op::alloc_at: {
        auto r = arena_.alloc_pages(s.op == Op::alloc_at ? addr(s.page) : nullptr, s.count);
        if (!r) return fmt::format("error {}", to_string(r.error().code));
        return fmt::format("page {}", page_of(*r));
      }
      case Op::free: {
        auto r = arena_.free_pages(addr(s.page), s.count);
        return r ? "ok" : fmt::format("error {}", to_string(r.error().code));
      }
      case Op::reserve: {
        auto r = arena_.reserve_pages(addr(s.page), s.count);
        return r ? "ok" : fmt::format("error {}", to_string(r.error().code));
      }
      case Op::touch:
        return segv_on_fault ? probe_then_touch(s.page, marker) : touch_here(s.page, marker);
    }
    return "?";
  }

 private:
  void* addr(std::uint32_t page) const {
    return reinterpret_cast<void*>(arena_.user_vm_start() + std::uint64_t{page} * kPageSize);
  }
  std::int64_t page_of(void* p) const {
    return static_cast<std::int64_t>(reinterpret_cast<std::uint64_t>(p) - arena_.user_vm_start()) /
           static_cast<std::int64_t>(kPageSize);
  }
  std::string touch_here(std::uint32_t page, std::uint8_t marker) {
    auto* p = static_cast<volatile std::uint8_t*>(addr(page));
    const std::uint8_t seen = p[0];
    p[0] = marker;
    return fmt::format("read {}", seen);
  }
  // Under segv_on_fault a touch of a page that is not there raises SIGSEGV.
  // Whether it would is asked of the same fault path a touch takes, without
  // the signal (forking a child per touch costs ~100 ms with guard-marked
  // views): the kernel's arena_vm_fault() through process_vm_readv(), which
  // fails with EFAULT where a touch would fault; the emulation's fault
  // handler entry. A page that is there is then mapped, and touched here.
  // (Real signals in real children: PageSemantics.SegvOnFault*.)
  std::string probe_then_touch(std::uint32_t page, std::uint8_t marker) {
    void* at = addr(page);
    bool there = false;
    if (arena_.backend() == ArenaBackend::kernel) {
      std::uint8_t byte = 0;
      iovec local{&byte, 1}, remote{at, 1};
      there = process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
    } else {
      there = internal::ArenaAccess::impl(arena_).claim_fault(
          {reinterpret_cast<std::uintptr_t>(at), 0, false});
    }
    return there ? touch_here(page, marker) : "segv";
  }

  Arena arena_;
};

// Random steps that keep the arena busy: mostly small counts, sometimes up
// to 512; frees usually hit something that was allocated.
class Generator {
 public:
  Generator(std::uint64_t seed, std::uint32_t pages) : rng_(seed), pages_(pages) {}

  Step next() {
    const std::uint32_t roll = pick(100);
    if (roll < 30) return {Op::alloc_any, 0, count()};
    if (roll < 45) return at(Op::alloc_at);
    if (roll < 70) {
      if (!live_.empty() && pick(4) != 0) {
        const auto i = pick(static_cast<std::uint32_t>(live_.size()));
        const auto [page, n] = live_[i];
        live_.erase(live_.begin() + i);
        return {Op::free, page, pick(5) == 0 ? 1 + pick(n) : n};  // sometimes a part
      }
      return at(Op::free);
    }
    if (roll < 80) return at(Op::reserve);
    return {Op::touch, pick(pages_), 1};
  }
  void allocated(std::uint32_t page, std::uint32_t n) {
    live_.push_back({page, n});
    if (live_.size() > 256) live_.pop_front();
  }

 private:
  std::uint32_t pick(std::uint32_t n) { return static_cast<std::uint32_t>(rng_() % n); }
  std::uint32_t count() {
    const std::uint32_t roll = pick(10);
    const std::uint32_t n = roll < 6 ? 1 + pick(4) : roll < 9 ? 1 + pick(64) : 1 + pick(512);
    return std::min(n, pages_ + 1);  // now and then one too many: too_big
  }
  Step at(Op op) {
    const std::uint32_t n = count();
    const std::uint32_t page = pick(pages_);
    return {op, page, n};
  }

  std::mt19937_64 rng_;
  std::uint32_t pages_;
  std::deque<std::pair<std::uint32_t, std::uint32_t>> live_;
};

TEST(Differential, KernelAndEmulationGiveTheSameTraces) {
  const std::uint64_t seed = env_or("SCXKIT_DIFF_SEED", std::random_device{}());
  const std::uint64_t total = env_or("SCXKIT_DIFF_OPS", kSanitizerBuild ? 10'000 : 100'000);
  SCOPED_TRACE(fmt::format("replay with SCXKIT_DIFF_SEED={}", seed));
  const Config configs[] = {{64, false, false},  {2048, false, false}, {64, true, false},
                            {2048, true, false}, {64, false, true},    {2048, true, true}};
  constexpr std::uint64_t kOpsPerRound = 2500;
  std::mt19937_64 round_seeds(seed);
  std::uint64_t done = 0;
  for (std::uint64_t round = 0; done < total; ++round) {
    const Config& c = configs[round % std::size(configs)];
    const std::uint32_t flags =
        arena_flags::mmapable | (c.segv_on_fault ? arena_flags::segv_on_fault : 0);
    const std::uint64_t size = std::uint64_t{c.pages} * kPageSize;
    auto kernel =
        create_on(ArenaBackend::kernel, {.max_entries = c.pages,
                                         .map_extra = c.aligned ? free_aligned_address(size) : 0,
                                         .map_flags = flags});
    if (!kernel && kernel.error().code == Errc::unsupported) {
      GTEST_SKIP() << "no kernel arena to compare against: " << kernel.error().message;
    }
    ASSERT_TRUE(kernel) << kernel.error().message;
    auto emulated =
        create_on(ArenaBackend::emulated, {.max_entries = c.pages,
                                           .map_extra = c.aligned ? free_aligned_address(size) : 0,
                                           .map_flags = flags});
    ASSERT_TRUE(emulated) << emulated.error().message;
    Side k(std::move(*kernel)), e(std::move(*emulated));
    Generator gen(round_seeds(), c.pages);
    std::deque<std::string> recent;
    const std::uint64_t n = std::min(kOpsPerRound, total - done);
    for (std::uint64_t i = 0; i < n; ++i, ++done) {
      const Step s = gen.next();
      const auto marker = static_cast<std::uint8_t>(1 + done % 255);
      const std::string want = k.run(s, c.segv_on_fault, marker);
      const std::string got = e.run(s, c.segv_on_fault, marker);
      recent.push_back(fmt::format("  {:>6}: {} -> {}", i, s.describe(), want));
      if (recent.size() > 12) recent.pop_front();
      if (want != got) {
        std::string trail;
        for (const auto& line : recent) trail += line + "\n";
        FAIL() << fmt::format(
            "divergence after {} operations (round {}: {} pages, segv_on_fault {}, 4 GiB "
            "aligned {}), op {}: {}\n  kernel:   {}\n  emulated: {}\nlast operations "
            "(kernel results):\n{}SCXKIT_DIFF_SEED={}",
            done, round, c.pages, c.segv_on_fault, c.aligned, i, s.describe(), want, got, trail,
            seed);
      }
      if (want.rfind("page ", 0) == 0) gen.allocated(std::stoul(want.substr(5)), s.count);
    }
  }
  RecordProperty("operations", static_cast<int>(done));
  RecordProperty("seed", std::to_string(seed));
}

}  // namespace
}  // namespace scxkit
