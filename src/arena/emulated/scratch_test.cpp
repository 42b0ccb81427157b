#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "arena/test_support.hpp"
#include "scxkit/program.hpp"

namespace scxkit {
namespace {

using internal::testing_support::died_of_segv;
using internal::testing_support::exit_code;
using internal::testing_support::kSanitizerBuild;
using internal::testing_support::kSegvReport;
using internal::testing_support::make_arena;
using internal::testing_support::resident_bytes;
using internal::testing_support::spawn_peer;
using internal::testing_support::unique_name;
using internal::testing_support::wait_for;

volatile char* kern(Arena& a, std::uint64_t page) {
  return static_cast<volatile char*>(a.kern_addr(static_cast<std::uint32_t>(page * kPageSize)));
}

int count_lines(const std::string& s, const std::string& needle) {
  int n = 0;
  for (std::size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

int mapping_count() {
  std::ifstream maps("/proc/self/maps");
  return static_cast<int>(
      std::count(std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>(), '\n'));
}

TEST(Scratch, AStrayReadInsideAProgramIsRecoveredAndReported) {
  Arena a = make_arena(16);
  Program prog("reader", &a);
  char got = 1;
  {
    ProgramScope scope(prog);
    got = kern(a, 5)[7];
  }
  EXPECT_EQ(got, 0);  // a fresh scratch page reads zero
  EXPECT_EQ(a.page_state(5 * kPageSize), PageState::scratch);
  EXPECT_EQ(a.stats()->scratch_pages, 1u);
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  const std::string err = prog.stream(StreamId::err).read_all();
  EXPECT_NE(err.find("arena violation: READ arena offset 0x5007 ip 0x"), std::string::npos) << err;
  EXPECT_NE(err.find(" tid "), std::string::npos);
  EXPECT_EQ(prog.stream(StreamId::out).read_all(), "");
}

TEST(Scratch, AStrayWriteIsReportedAsAWriteAndLandsInScratch) {
  Arena a = make_arena(16);
  Program prog("writer", &a);
  {
    ProgramScope scope(prog);
    kern(a, 3)[0] = 42;
    kern(a, 3)[1] = 43;  // the same page again: no second fault, no second report
  }
  const std::string err = prog.stream(StreamId::err).read_all();
  EXPECT_EQ(count_lines(err, "arena violation: WRITE arena offset 0x3000 "), 1) << err;
  EXPECT_EQ(count_lines(err, "arena violation"), 1) << err;
}

TEST(Scratch, OffsetsPastFourGiBInTheUpperHalfGuardAreRecovered) {
  Arena a = make_arena(16);
  Program prog("far", &a);
  {
    ProgramScope scope(prog);
    auto* past = static_cast<volatile char*>(a.kern_addr(0)) + k4GiB + 100;
    (void)*past;
  }
  EXPECT_NE(prog.stream(StreamId::err).read_all().find("READ arena offset 0x100000064"),
            std::string::npos);
}

TEST(Scratch, AllocationReplacesScratchAndBothViewsSeeOneZeroedPage) {
  Arena a = make_arena(16);
  Program prog("p", &a);
  const std::uint32_t off = static_cast<std::uint32_t>(a.user_vm_start()) + 2 * kPageSize;
  {
    ProgramScope scope(prog);
    std::memset(const_cast<char*>(kern(a, off / kPageSize)), 0x5a,
                kPageSize);  // garbage in scratch
  }
  ASSERT_EQ(a.page_state(off), PageState::scratch);
  auto p = a.alloc_pages(a.user_addr(off), 1);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(a.page_state(off), PageState::allocated);
  EXPECT_EQ(a.stats()->scratch_pages, 0u);
  const char* user = static_cast<char*>(*p);
  const char* k = static_cast<char*>(a.kern_addr(off));
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(user[i], 0) << i;
  EXPECT_EQ(std::memcmp(user, k, kPageSize), 0);
  static_cast<char*>(*p)[9] = 9;
  EXPECT_EQ(k[9], 9);
}

TEST(Scratch, FreeSkipsScratchAndFirstFitStillHandsItOut) {
  Arena a = make_arena(4);
  Program prog("p", &a);
  const std::uint64_t first = static_cast<std::uint32_t>(a.user_vm_start()) / kPageSize;
  {
    ProgramScope scope(prog);
    (void)kern(a, first)[0];
  }
  ASSERT_TRUE(a.free_pages(a.user_addr(static_cast<std::uint32_t>(first * kPageSize)), 4));
  EXPECT_EQ(a.page_state(static_cast<std::uint32_t>(first * kPageSize)), PageState::scratch);
  auto p = a.alloc_pages(nullptr, 4);  // scratch is never handed out: it is replaced
  ASSERT_TRUE(p);
  EXPECT_EQ(a.stats()->scratch_pages, 0u);
}

TEST(Scratch, AReservedPageHitByAStrayAccessBecomesScratchAndFreeableAgain) {
  Arena a = make_arena(4);
  Program prog("p", &a);
  void* at = a.user_addr(static_cast<std::uint32_t>(a.user_vm_start()));
  ASSERT_TRUE(a.reserve_pages(at, 1));
  {
    ProgramScope scope(prog);
    (void)*static_cast<volatile char*>(a.kern_addr(Arena::offset_of_user(at)));
  }
  EXPECT_EQ(a.stats()->reserved_pages, 0u);
  EXPECT_FALSE(a.alloc_pages(at, 1));  // still out of the allocator's hands
  ASSERT_TRUE(a.free_pages(at, 1));
  EXPECT_TRUE(a.alloc_pages(at, 1));
}

TEST(Scratch, NestedScopesReportToTheInnermostProgram) {
  Arena a = make_arena(16);
  Program outer("outer", &a), inner("inner", &a);
  {
    ProgramScope s1(outer);
    {
      ProgramScope s2(inner);
      (void)kern(a, 1)[0];
    }
    (void)kern(a, 2)[0];
  }
  EXPECT_EQ(count_lines(inner.stream(StreamId::err).read_all(), "offset 0x1000 "), 1);
  EXPECT_EQ(count_lines(outer.stream(StreamId::err).read_all(), "offset 0x2000 "), 1);
}

TEST(ScratchConcurrency, ThreadsFaultingOnOnePageShareOneInstallAndEachFaultIsReportedOnce) {
  Arena a = make_arena(16);
  Program prog("many", &a);
  constexpr int kThreads = 4;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> finished{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ProgramScope scope(prog);
      start.arrive_and_wait();
      (void)kern(a, 7)[64];
      ++finished;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(finished.load(), kThreads);
  EXPECT_EQ(a.stats()->scratch_pages, 1u);  // one install
  const std::string err = prog.stream(StreamId::err).read_all();
  // Every thread's access faulted unless another thread had already mapped it;
  // each fault is reported once, and at least the installing thread's was.
  const int reports = count_lines(err, "arena violation: READ arena offset 0x7040 ");
  EXPECT_GE(reports, 1);
  EXPECT_LE(reports, kThreads);
  std::set<std::string> tids;
  for (std::size_t at = err.find(" tid "); at != std::string::npos;
       at = err.find(" tid ", at + 1)) {
    tids.insert(err.substr(at, err.find('\n', at) - at));
  }
  EXPECT_EQ(static_cast<int>(tids.size()), reports) << "one report per faulting thread";
}

TEST(ScratchConcurrency, EveryThreadsStrayAccessIsReportedWithItsOwnOffset) {
  // Each thread strays onto a page of its own (exactly one fault each), then
  // all onto one shared page (at least the installing thread's fault).
  Arena a = make_arena(64);
  Program prog("seq", &a);
  constexpr int kThreads = 3;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ProgramScope scope(prog);
      (void)kern(a, 10 + static_cast<std::uint64_t>(t))[0];  // distinct pages: one fault each
      (void)kern(a, 20)[0];                                  // a shared page
    });
  }
  for (auto& th : threads) th.join();
  const std::string err = prog.stream(StreamId::err).read_all();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(count_lines(err, fmt::format("offset 0x{:x}000 ", 10 + t)), 1);
  }
  EXPECT_GE(count_lines(err, "offset 0x14000 "), 1);
}

TEST(ScratchConcurrency, AllocationRacingStrayAccessesAlwaysPublishesOneZeroedPage) {
  Arena a = make_arena(256);
  Program prog("racer", &a);
  const std::uint32_t base = static_cast<std::uint32_t>(a.user_vm_start());
  constexpr std::uint32_t kPages = 64;
  for (int round = 0; round < (kSanitizerBuild ? 10 : 40); ++round) {
    // Phase 1: stray writers fill every page's scratch with garbage.
    {
      ProgramScope scope(prog);
      for (std::uint32_t p = 0; p < kPages; ++p) {
        std::memset(static_cast<char*>(a.kern_addr(base + p * kPageSize)), 0x77, kPageSize);
      }
    }
    // Phase 2: readers keep faulting on the pages while they are allocated.
    std::atomic<bool> stop{false};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
      readers.emplace_back([&, t] {
        ProgramScope scope(prog);
        std::mt19937 rng(t + round);
        while (!stop) (void)kern(a, (base / kPageSize) + rng() % kPages)[rng() % kPageSize];
      });
    }
    for (std::uint32_t p = 0; p < kPages; ++p) {
      auto got = a.alloc_pages(a.user_addr(base + p * kPageSize), 1);
      ASSERT_TRUE(got) << got.error().message;
      const char* user = static_cast<const char*>(*got);
      const char* k = static_cast<const char*>(a.kern_addr(base + p * kPageSize));
      for (std::size_t i = 0; i < kPageSize; i += 8) {
        ASSERT_EQ(user[i], 0) << "scratch garbage leaked into page " << p;
        ASSERT_EQ(k[i], 0) << "kernel view sees another page than the user view";
      }
    }
    stop = true;
    for (auto& r : readers) r.join();
    ASSERT_TRUE(a.free_pages(a.user_addr(base), kPages));
    prog.stream(StreamId::err).read_all();
  }
}

TEST(ScratchAcrossProcesses, APeerKilledWhileStrayingLeavesNoSlotStuck) {
  // More stray pages than one process keeps backed, so the peer also evicts.
  constexpr std::uint32_t kPages = 20000;
  const std::string name = unique_name("stray-kill");
  auto a = Arena::create({.max_entries = kPages, .name = name});
  ASSERT_TRUE(a) << a.error().message;
  const std::string start = fmt::format("{:x}", a->user_vm_start());
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  for (int round = 0; round < 8; ++round) {
    const pid_t peer = spawn_peer({"stray", name, start});
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 300));
    kill(peer, SIGKILL);
    wait_for(peer, 10'000);
  }
  // Every slot settled: allocating the whole arena finishes. In a child with
  // a deadline, because a slot stuck in transition would make it spin forever.
  const pid_t child = fork();
  if (child == 0) _exit(a->alloc_pages(nullptr, kPages) ? 0 : 1);
  EXPECT_EQ(exit_code(wait_for(child, 60'000)), 0) << "-1: allocation hung";
}

TEST(ScratchScale, AMillionDistinctStrayPagesSurviveWithBoundedMemory) {
  // The naive design (one mmap per stray page) dies near vm.max_map_count.
  // Sanitizer builds fault several times slower; 200,000 is still 3x that limit.
  const std::uint32_t pages = kSanitizerBuild ? 200'000 : 1'000'000;
  Arena a = make_arena(kMaxArenaPages);
  Program prog("spray", &a, 1 << 20);
  const int maps_before = mapping_count();
  std::uint64_t reports = 0;
  {
    ProgramScope scope(prog);
    for (std::uint32_t p = 0; p < pages; ++p) {
      kern(a, p)[p % kPageSize] = 1;
      if (p % 8192 == 8191) reports += count_lines(prog.stream(StreamId::err).read_all(), "\n");
    }
  }
  reports += count_lines(prog.stream(StreamId::err).read_all(), "\n");
  EXPECT_EQ(reports + prog.stream(StreamId::err).dropped(), pages);
  EXPECT_EQ(a.stats()->scratch_pages, pages);
  // No mapping per stray page; the slack is for sanitizer runtimes' own mappings.
  EXPECT_LE(mapping_count(), maps_before + 16);
  // At most kScratchResident (16384) pages of scratch stay backed.
  EXPECT_LE(resident_bytes(a), (16384 + 2048) * kPageSize);
}

TEST(ScratchDeathTest, TheUserViewOfAScratchedPageGetsSigsegvNotALazyPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4);
        Program prog("p", &a);
        const std::uint32_t off = static_cast<std::uint32_t>(a.user_vm_start());
        {
          ProgramScope scope(prog);
          (void)*static_cast<volatile char*>(a.kern_addr(off));
        }
        (void)*static_cast<volatile char*>(a.user_addr(off));
      },
      died_of_segv, kSegvReport);
}

TEST(ScratchDeathTest, TheLowerHalfGuardIsNeverRecovered) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4);
        Program prog("p", &a);
        ProgramScope scope(prog);
        (void)*(static_cast<volatile char*>(a.kern_addr(0)) - 16);
      },
      died_of_segv, kSegvReport);
}

TEST(ScratchDeathTest, AProgramOfAnotherArenaIsNotRecoveredHere) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4);
        Arena b = make_arena(4);
        Program prog("uses-b", &b);
        ProgramScope scope(prog);
        (void)*static_cast<volatile char*>(a.kern_addr(0));
      },
      died_of_segv, kSegvReport);
}

sigjmp_buf g_jump;
volatile sig_atomic_t g_prior_handler_calls = 0;
void prior_handler(int) {
  g_prior_handler_calls = g_prior_handler_calls + 1;
  siglongjmp(g_jump, 1);
}

TEST(ScratchDeathTest, FaultsThatAreNotOursReachTheHandlerInstalledBefore) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = prior_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_NODEFER;
        sigaction(SIGSEGV, &sa, nullptr);
        Arena a = make_arena(4);  // installs scxkit's handler over the prior one
        Program prog("p", &a);
        if (sigsetjmp(g_jump, 1) == 0) {
          (void)*static_cast<volatile char*>(a.kern_addr(0));  // outside any scope
        }
        if (sigsetjmp(g_jump, 1) == 0) {
          ProgramScope scope(prog);
          (void)*(static_cast<volatile char*>(a.kern_addr(0)) - 16);  // lower half-guard
        }
        {
          ProgramScope scope(prog);
          (void)*static_cast<volatile char*>(a.kern_addr(0));  // ours: recovered
        }
        std::exit(g_prior_handler_calls == 2 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ScratchDeathTest, ASignalSentWithKillIsNeverTreatedAsAFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4);
        Program prog("p", &a);
        ProgramScope scope(prog);
        raise(SIGSEGV);
      },
      [](int status) {
        if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV;
        return kSanitizerBuild && WIFEXITED(status) && WEXITSTATUS(status) != 0;
      },
      "");
}

}  // namespace
}  // namespace scxkit
