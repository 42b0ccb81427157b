#include "scxkit/arena.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "arena/os.hpp"
#include "arena/test_support.hpp"
#include "scxkit/arena_ptr.hpp"

namespace scxkit {
namespace {

using internal::ArenaAccess;
using internal::testing_support::died_of_segv;
using internal::testing_support::free_aligned_address;
using internal::testing_support::kSegvReport;
using internal::testing_support::make_arena;
using internal::testing_support::resident_bytes;
using internal::testing_support::run_peer;

Errc create_error(ArenaOptions o) {
  auto a = Arena::create(o);
  EXPECT_FALSE(a.has_value());
  if (a) return Errc::system_error;
  EXPECT_FALSE(a.error().message.empty());
  return a.error().code;
}

std::uint32_t off(const void* p) {
  return Arena::offset_of_user(p);
}
char* bytes(void* p) {
  return static_cast<char*>(p);
}

TEST(ArenaCreate, RejectsBadInputWithTheKernelsErrors) {
  EXPECT_EQ(create_error({.max_entries = 0}), Errc::invalid_argument);
  EXPECT_EQ(create_error({.max_entries = kMaxArenaPages + 1}), Errc::too_big);
  EXPECT_EQ(create_error({.max_entries = 1, .map_flags = 0}), Errc::invalid_argument);
  EXPECT_EQ(create_error({.max_entries = 1, .map_flags = arena_flags::mmapable | 1u}),
            Errc::invalid_argument);
  EXPECT_EQ(create_error({.max_entries = 1, .map_extra = 0x7000'0000'0100}),
            Errc::invalid_argument);
  // 2 pages ending one page past a 4 GiB boundary.
  EXPECT_EQ(create_error({.max_entries = 2, .map_extra = 0x7000'ffff'f000}), Errc::out_of_range);
  EXPECT_EQ(create_error({.max_entries = 1, .map_extra = std::uint64_t{1} << 48}),
            Errc::out_of_range);
  EXPECT_EQ(create_error({.max_entries = 1, .name = "bad/name"}), Errc::invalid_argument);
}

TEST(ArenaCreate, RefusesAFixedAddressThatIsInUse) {
  void* taken = mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(taken, MAP_FAILED);
  ArenaOptions o{.max_entries = 4, .map_extra = reinterpret_cast<std::uint64_t>(taken)};
  EXPECT_EQ(create_error(o), Errc::address_in_use);
  munmap(taken, kPageSize);
}

TEST(ArenaCreate, HonoursMapExtraAndAcceptsTheFull4GiB) {
  const std::uint64_t at = free_aligned_address(k4GiB);
  Arena a = make_arena(kMaxArenaPages, arena_flags::mmapable, at);
  EXPECT_EQ(a.user_vm_start(), at);
  EXPECT_EQ(a.user_vm_end(), at + k4GiB);
  EXPECT_EQ(a.max_entries(), kMaxArenaPages);
}

TEST(ArenaCreate, PickedUserRangeNeverCrosses4GiB) {
  for (std::uint32_t pages : {1u, 300u, 262144u, kMaxArenaPages}) {
    Arena a = make_arena(pages);
    EXPECT_EQ(a.user_vm_start() >> 32, (a.user_vm_end() - 1) >> 32) << pages;
    EXPECT_EQ(a.user_vm_start() % kPageSize, 0u);
  }
}

TEST(ArenaViews, KernelViewLayoutAndConversions) {
  Arena a = make_arena(16);
  EXPECT_EQ(a.kern_vm_start() % kPageSize, 0u);
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p) << p.error().message;
  const std::uint32_t o = off(*p);
  EXPECT_EQ(a.user_addr(o), *p);
  EXPECT_EQ(reinterpret_cast<std::uint64_t>(a.kern_addr(o)), a.kern_vm_start() + o);
  EXPECT_EQ(a.offset_of_kern(a.kern_addr(o)), o);
  // A fresh arena hands out its first page.
  EXPECT_EQ(o, static_cast<std::uint32_t>(a.user_vm_start()));
}

TEST(ArenaViews, APageWrittenInOneViewReadsBackInTheOther) {
  Arena a = make_arena(64);
  auto p = a.alloc_pages(nullptr, 3);
  ASSERT_TRUE(p);
  char* user = bytes(*p);
  char* kern = bytes(a.kern_addr(off(*p)));
  std::strcpy(user + 5000, "from user");
  EXPECT_STREQ(kern + 5000, "from user");
  std::strcpy(kern + 2 * kPageSize, "from kernel");
  EXPECT_STREQ(user + 2 * kPageSize, "from kernel");
}

TEST(ArenaViews, TypedPointersConvertWithOneAddAndZeroIsNull) {
  Arena a = make_arena(8);
  struct Node {
    int value;
    ArenaPtr<Node> next;
  };
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  auto* first = static_cast<Node*>(*p);
  auto* second = first + 1;
  second->value = 7;
  first->next = ArenaPtr<Node>::from(a.user_view(), second);
  // Followed through the kernel view, the same 32-bit pointer finds the same node.
  Node* k = ArenaPtr<Node>::from(a.user_view(), first).in(*a.kern_view());
  EXPECT_EQ(k->next.in(*a.kern_view())->value, 7);
  EXPECT_EQ(ArenaPtr<Node>().in(*a.kern_view()), nullptr);
  EXPECT_FALSE(ArenaPtr<Node>::from(a.user_view(), nullptr));
  EXPECT_EQ((first->next + 1).offset(), first->next.offset() + sizeof(Node));
}

TEST(ArenaPages, PageZeroIsHandedOutWhenUserStartIs4GiBAligned) {
  Arena a = make_arena(4, arena_flags::mmapable, free_aligned_address(4 * kPageSize));
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(off(*p), 0u);
  EXPECT_NE(*p, nullptr);
}

TEST(ArenaPages, FirstFitAndExactPlacement) {
  Arena a = make_arena(32);
  const std::uint64_t base = a.user_vm_start();
  auto addr = [&](std::uint64_t page) { return reinterpret_cast<void*>(base + page * kPageSize); };
  auto p1 = a.alloc_pages(nullptr, 1), p2 = a.alloc_pages(nullptr, 2),
       p3 = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p1 && p2 && p3);
  EXPECT_EQ(*p1, addr(0));
  EXPECT_EQ(*p2, addr(1));
  EXPECT_EQ(*p3, addr(3));
  ASSERT_TRUE(a.free_pages(*p2, 2));
  auto fit = a.alloc_pages(nullptr, 2);
  ASSERT_TRUE(fit);
  EXPECT_EQ(*fit, addr(1));  // the hole, not the end
  auto exact = a.alloc_pages(addr(10), 4);
  ASSERT_TRUE(exact);
  EXPECT_EQ(*exact, addr(10));
  auto taken = a.alloc_pages(addr(12), 1);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, Errc::busy);
  auto big = a.alloc_pages(nullptr, 7);  // 4..9 is the first run of 6; 14.. holds 7
  ASSERT_TRUE(big);
  EXPECT_EQ(*big, addr(14));
}

TEST(ArenaPages, BadRequestsFailClearlyAndChangeNothing) {
  Arena a = make_arena(8);
  const ArenaStats before = *a.stats();
  auto code = [&](Result<void*> r) { return r ? Errc::system_error : r.error().code; };
  EXPECT_EQ(code(a.alloc_pages(nullptr, 0)), Errc::invalid_argument);
  EXPECT_EQ(code(a.alloc_pages(nullptr, 9)), Errc::too_big);
  EXPECT_EQ(code(a.alloc_pages(reinterpret_cast<void*>(a.user_vm_start() + 1), 1)),
            Errc::invalid_argument);
  EXPECT_EQ(code(a.alloc_pages(reinterpret_cast<void*>(a.user_vm_start() + 6 * kPageSize), 3)),
            Errc::out_of_range);
  EXPECT_EQ(code(a.alloc_pages(nullptr, 1, 4096)), Errc::invalid_argument);
  EXPECT_EQ(a.stats()->allocated_pages, before.allocated_pages);
  EXPECT_EQ(a.stats()->free_pages, 8u);
  ASSERT_TRUE(a.alloc_pages(nullptr, 8));
  EXPECT_EQ(code(a.alloc_pages(nullptr, 1)), Errc::no_space);
}

TEST(ArenaPages, FreedMemoryGoesBackToTheOsAndComesBackZeroed) {
  Arena a = make_arena(256);
  auto p = a.alloc_pages(nullptr, 128);
  ASSERT_TRUE(p);
  std::memset(*p, 0xab, 128 * kPageSize);
  EXPECT_GE(resident_bytes(a), 128 * kPageSize);
  ASSERT_TRUE(a.free_pages(*p, 128));
  EXPECT_LT(resident_bytes(a), 8 * kPageSize);
  auto again = a.alloc_pages(*p, 128);
  ASSERT_TRUE(again);
  for (std::size_t i = 0; i < 128 * kPageSize; i += 512) ASSERT_EQ(bytes(*again)[i], 0) << i;
}

TEST(ArenaPages, FreeLooksOnlyAtTheLow32BitsAndSkipsWhatIsNotAllocated) {
  Arena a = make_arena(16);
  auto p = a.alloc_pages(nullptr, 2);
  ASSERT_TRUE(p);
  EXPECT_TRUE(a.free_pages(reinterpret_cast<void*>(a.user_vm_start() + 8 * kPageSize), 8));
  EXPECT_EQ(a.stats()->allocated_pages, 2u);
  const std::uint64_t garbage_high = (0xdeadull << 32) | off(*p);
  ASSERT_TRUE(a.free_pages(reinterpret_cast<void*>(garbage_high), 2));
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  EXPECT_EQ(a.page_state(off(*p)), PageState::empty);
  EXPECT_TRUE(a.free_pages(*p, 1000000));  // clipped to the arena: harmless
}

TEST(ArenaPages, FreeingNullReturnsAtOnceEvenWhenPageZeroIsAllocated) {
  // bpf_arena_free_pages() returns at once on NULL; offset 0 is a real page
  // only through its user address.
  Arena a = make_arena(4, arena_flags::mmapable, free_aligned_address(4 * kPageSize));
  auto p = a.alloc_pages(nullptr, 2);
  ASSERT_TRUE(p);
  ASSERT_EQ(off(*p), 0u);
  std::strcpy(bytes(*p), "kept");
  EXPECT_TRUE(a.free_pages(nullptr, 2));
  EXPECT_EQ(a.page_state(0), PageState::allocated);
  EXPECT_EQ(a.stats()->allocated_pages, 2u);
  EXPECT_STREQ(bytes(*p), "kept");
}

TEST(ArenaPages, ReservedPagesAreNotAllocatableUntilFreed) {
  Arena a = make_arena(16);
  void* at = reinterpret_cast<void*>(a.user_vm_start() + 4 * kPageSize);
  ASSERT_TRUE(a.reserve_pages(at, 4));
  EXPECT_EQ(a.page_state(off(at)), PageState::reserved);
  EXPECT_EQ(a.stats()->reserved_pages, 4u);
  EXPECT_FALSE(a.alloc_pages(at, 1));
  auto big = a.alloc_pages(nullptr, 5);
  ASSERT_TRUE(big);
  EXPECT_EQ(off(*big), off(at) + 4 * kPageSize);  // skipped the reservation
  auto again = a.reserve_pages(at, 1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::busy);
  auto over_allocated = a.reserve_pages(*big, 1);
  ASSERT_FALSE(over_allocated);
  EXPECT_EQ(over_allocated.error().code, Errc::busy);
  ASSERT_TRUE(a.free_pages(at, 4));
  EXPECT_EQ(a.stats()->reserved_pages, 0u);
  EXPECT_TRUE(a.alloc_pages(at, 4));
}

TEST(ArenaFaults, UserTouchOfAnUnallocatedPageAllocatesItLazily) {
  Arena a = make_arena(16);
  char* page = bytes(a.user_addr(static_cast<std::uint32_t>(a.user_vm_start()) + 3 * kPageSize));
  EXPECT_EQ(page[100], 0);  // read fault: a zeroed page
  page[200] = 42;
  EXPECT_EQ(a.page_state(off(page)), PageState::allocated);
  EXPECT_EQ(a.stats()->lazy_pages, 1u);
  EXPECT_EQ(bytes(a.kern_addr(off(page)))[200], 42);  // the same page in the kernel view
  // The allocator learns of the lazy page and never hands it out again.
  auto p = a.alloc_pages(nullptr, 4);
  ASSERT_TRUE(p);
  EXPECT_EQ(off(*p), off(page) + kPageSize);
  EXPECT_FALSE(a.alloc_pages(page, 1));
}

TEST(ArenaFaults, AReservedPageTouchedFromUserSpaceIsAllocatedLikeTheKernelDoes) {
  Arena a = make_arena(4);
  void* at = a.user_addr(static_cast<std::uint32_t>(a.user_vm_start()));
  ASSERT_TRUE(a.reserve_pages(at, 1));
  bytes(at)[0] = 1;
  EXPECT_EQ(a.page_state(off(at)), PageState::allocated);
  EXPECT_EQ(a.stats()->reserved_pages, 0u);
}

TEST(ArenaFaultsDeathTest, SegvOnFaultKillsTheProcessOnAnUnallocatedPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4, arena_flags::mmapable | arena_flags::segv_on_fault);
        volatile char* p = bytes(a.user_addr(static_cast<std::uint32_t>(a.user_vm_start())));
        (void)*p;
      },
      died_of_segv, kSegvReport);
}

TEST(ArenaFaultsDeathTest, SegvOnFaultKillsOnAFreedPageToo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4, arena_flags::mmapable | arena_flags::segv_on_fault);
        auto p = a.alloc_pages(nullptr, 1);
        bytes(*p)[0] = 1;
        (void)a.free_pages(*p, 1);
        *static_cast<volatile char*>(*p) = 2;
      },
      died_of_segv, kSegvReport);
}

TEST(ArenaFaultsDeathTest, AThreadThatBlocksAllSignalsGetsLazyPagesToo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(16);
        char* page =
            bytes(a.user_addr(static_cast<std::uint32_t>(a.user_vm_start()) + 3 * kPageSize));
        bool ok = false;
        std::thread server_style([&] {
          sigset_t all;
          sigfillset(&all);
          pthread_sigmask(SIG_BLOCK, &all, nullptr);
          page[1] = 42;
          ok = page[0] == 0 && page[1] == 42;
        });
        server_style.join();
        std::exit(ok && a.page_state(off(page)) == PageState::allocated ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(ArenaFaults, SegvOnFaultStillServesAllocatedPages) {
  Arena a = make_arena(4, arena_flags::mmapable | arena_flags::segv_on_fault);
  auto p = a.alloc_pages(nullptr, 2);
  ASSERT_TRUE(p);
  bytes(*p)[kPageSize + 1] = 9;
  EXPECT_EQ(bytes(a.kern_addr(off(*p)))[kPageSize + 1], 9);
}

TEST(ArenaFaultsDeathTest, KernelViewTouchOutsideAProgramIsAnOrdinaryCrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Arena a = make_arena(4);
        volatile char* k = bytes(a.kern_addr(static_cast<std::uint32_t>(a.user_vm_start())));
        (void)*k;
      },
      died_of_segv, kSegvReport);
}

TEST(ArenaLocking, TheNonSleepingAllocationFailsFastWhenTheArenaIsBusy) {
  Arena a = make_arena(8);
  auto& impl = ArenaAccess::impl(a);
  std::atomic<bool> held{false}, release{false};
  std::thread holder([&] {
    auto lock = impl.lock(true);
    held = true;
    while (!release) std::this_thread::yield();
  });
  while (!held) std::this_thread::yield();
  auto r = a.try_alloc_pages(nullptr, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::busy);
  release = true;
  holder.join();
  EXPECT_TRUE(a.try_alloc_pages(nullptr, 1));
}

TEST(ArenaLocking, AProcessDyingHalfwayThroughAFreeIsRepairedByTheNextUser) {
  Arena a = make_arena(16);
  auto keep = a.alloc_pages(nullptr, 2);
  auto dying = a.alloc_pages(nullptr, 3);
  ASSERT_TRUE(keep && dying);
  std::strcpy(bytes(*keep), "kept");
  bytes(*dying)[0] = 1;
  const pid_t pid = fork();
  if (pid == 0) {
    // Take the lock, start freeing the 3 pages, die without finishing or unlocking.
    auto lock = ArenaAccess::impl(a).lock(true);
    for (std::uint32_t i = 0; i < 3; ++i) {
      ArenaAccess::set_slot(a, off(*dying) + i * kPageSize, internal::kSlotFreeing);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  auto again = a.alloc_pages(*dying, 3);  // meets EOWNERDEAD and repairs first
  ASSERT_TRUE(again) << again.error().message;
  for (std::size_t i = 0; i < 3 * kPageSize; i += 256) ASSERT_EQ(bytes(*again)[i], 0) << i;
  EXPECT_STREQ(bytes(*keep), "kept");
  EXPECT_EQ(a.stats()->allocated_pages, 5u);
  EXPECT_EQ(a.stats()->free_pages, 11u);
}

TEST(ArenaConcurrency, ThreadsAllocateAndFreeWithoutOverlap) {
  Arena a = make_arena(4096);
  constexpr int kThreads = 4, kRounds = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<std::uint64_t*, std::uint32_t>> held;
      for (int round = 0; round < kRounds; ++round) {
        const std::uint32_t n = 1 + rng() % 8;
        auto p = a.alloc_pages(nullptr, n);
        if (!p) {
          ++failures;
          continue;
        }
        auto* words = static_cast<std::uint64_t*>(*p);
        const std::uint64_t tag = (std::uint64_t(t) << 32) | round;
        for (std::size_t i = 0; i < n * kPageSize / 8; i += 64) words[i] = tag;
        held.emplace_back(words, n);
        if (held.size() > 4 || rng() % 2) {
          auto [w, m] = held.front();
          held.erase(held.begin());
          const std::uint64_t want = w[0];
          for (std::size_t i = 0; i < m * kPageSize / 8; i += 64) {
            if (w[i] != want || (want >> 32) != std::uint64_t(t)) ++failures;
          }
          if (!a.free_pages(w, m)) ++failures;
        }
      }
      for (auto [w, m] : held) (void)a.free_pages(w, m);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  EXPECT_EQ(a.stats()->free_pages, 4096u);
  EXPECT_EQ(a.stats()->free_extents, 1u);
}

TEST(ArenaConcurrency, LazyFaultsRaceAllocationsWithoutDoubleHandout) {
  Arena a = make_arena(1024);
  std::atomic<bool> stop{false};
  std::thread toucher([&] {
    std::mt19937 rng(1);
    while (!stop) {
      const std::uint32_t page = rng() % 1024;
      bytes(a.user_addr(static_cast<std::uint32_t>(a.user_vm_start()) + page * kPageSize))[8] = 1;
    }
  });
  std::vector<void*> got;
  for (int i = 0; i < 2000; ++i) {
    auto p = a.alloc_pages(nullptr, 1);
    if (!p) break;
    // A page handed out by the allocator is never one a fault took.
    EXPECT_EQ(bytes(*p)[16], 0);
    bytes(*p)[16] = 1;
    got.push_back(*p);
  }
  stop = true;
  toucher.join();
  EXPECT_EQ(a.stats()->allocated_pages, 1024u);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
}

void expect_shared(Arena& a, void* first, int peer_rc) {
  ASSERT_EQ(peer_rc, 0);
  // The peer's allocation went through the one shared allocator, next to ours.
  EXPECT_STREQ(bytes(first) + kPageSize, "second");
  EXPECT_EQ(a.page_state(off(first) + kPageSize), PageState::allocated);
  EXPECT_EQ(a.stats()->allocated_pages, 2u);
}

TEST(ArenaSharing, ASecondProcessSeesTheSamePagesThroughAPassedDescriptor) {
  Arena a = make_arena(64);
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  std::strcpy(bytes(*p), "first");
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_TRUE(send_arena_fd(sv[0], a));
  const int rc =
      run_peer({"fd", std::to_string(sv[1]), fmt::format("{:x}", a.user_vm_start())}, sv[1]);
  expect_shared(a, *p, rc);
  close(sv[0]);
  close(sv[1]);
}

TEST(ArenaSharing, TwoProcessesShareOneArenaByName) {
  const std::string name = "test." + std::to_string(getpid());
  ArenaOptions o{.max_entries = 64, .name = name};
  auto a = Arena::create(o);
  ASSERT_TRUE(a) << a.error().message;
  auto dup = Arena::create(o);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::already_exists);
  auto p = a->alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  std::strcpy(bytes(*p), "first");
  expect_shared(*a, *p, run_peer({"name", name, fmt::format("{:x}", a->user_vm_start())}));
  auto missing = Arena::open("no-such-arena." + name);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
  auto bad = Arena::open("../etc/passwd");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
}

// Frees one process makes reach every other process's views before
// free_pages returns, as the kernel zaps every mapping: a later access there
// is a fault like any other, never a silent write into memory the allocator
// believes free.
int free_under_a_peer(Arena& a, const std::string& name, void* page) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) {
    fcntl(sv[1], F_SETFD, 0);
    const std::string start = fmt::format("{:x}", a.user_vm_start());
    const std::string sock = std::to_string(sv[1]);
    execl(SCXKIT_ARENA_PEER, SCXKIT_ARENA_PEER, "after-free", name.c_str(), start.c_str(),
          sock.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  char c = 0;
  EXPECT_EQ(read(sv[0], &c, 1), 1);  // the peer has the page mapped
  EXPECT_TRUE(a.free_pages(page, 1));
  c = 'f';
  EXPECT_EQ(write(sv[0], &c, 1), 1);
  int status = 0;
  waitpid(pid, &status, 0);
  close(sv[0]);
  close(sv[1]);
  return status;
}

TEST(ArenaSharing, AFreeReachesAnotherProcessesViewsBeforeItReturns) {
  const std::string name = "uaf." + std::to_string(getpid());
  auto a = Arena::create({.max_entries = 16, .name = name});
  ASSERT_TRUE(a) << a.error().message;
  auto p = a->alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  std::strcpy(bytes(*p), "first");
  const int status = free_under_a_peer(*a, name, *p);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The peer's write faulted and allocated the page lazily, as with the kernel.
  EXPECT_EQ(a->page_state(off(*p)), PageState::allocated);
  EXPECT_EQ(a->stats()->lazy_pages, 1u);
  EXPECT_STREQ(bytes(*p), "after");
}

TEST(ArenaSharing, WithSegvOnFaultTheOtherProcessDiesOnThePageFreedUnderIt) {
  const std::string name = "uaf-segv." + std::to_string(getpid());
  auto a = Arena::create({.max_entries = 16,
                          .map_flags = arena_flags::mmapable | arena_flags::segv_on_fault,
                          .name = name});
  ASSERT_TRUE(a) << a.error().message;
  auto p = a->alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  std::strcpy(bytes(*p), "first");
  EXPECT_TRUE(died_of_segv(free_under_a_peer(*a, name, *p)));
  EXPECT_EQ(a->page_state(off(*p)), PageState::empty);
  auto again = a->alloc_pages(*p, 1);
  ASSERT_TRUE(again);
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(bytes(*again)[i], 0) << i;
}

TEST(ArenaSharing, TheLastUserReturnsTheMemoryAndTheNameGoes) {
  const std::string name = "gone." + std::to_string(getpid());
  auto a = Arena::create({.max_entries = 8, .name = name});
  ASSERT_TRUE(a);
  a->teardown();
  auto again = Arena::open(name);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::not_found);
}

TEST(ArenaTeardown, HugeFreesAndTeardownWorkInShortChunks) {
  Arena a = make_arena(65536);
  auto p = a.alloc_pages(nullptr, 65536);
  ASSERT_TRUE(p);
  for (std::size_t i = 0; i < 65536; ++i) bytes(*p)[i * kPageSize] = 1;
  auto pauses = a.free_pages(*p, 65536);
  ASSERT_TRUE(pauses);
  EXPECT_GT(pauses->chunks, 1u);
  EXPECT_EQ(a.stats()->free_pages, 65536u);
  const PauseStats t = a.teardown();
  EXPECT_GT(t.chunks, 1u);
}

TEST(ArenaTeardown, CallsRacingATeardownFailCleanly) {
  for (int round = 0; round < 20; ++round) {
    Arena a = make_arena(256);
    std::atomic<int> wrong{0}, started{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        ++started;
        for (;;) {
          auto p = a.alloc_pages(nullptr, 1 + t);
          (void)a.stats();
          (void)a.page_state(static_cast<std::uint32_t>(a.user_vm_start()));
          if (!p) {
            if (p.error().code == Errc::invalid_argument) return;  // torn down
            if (p.error().code != Errc::no_space) ++wrong;
            continue;
          }
          auto f = a.free_pages(*p, 1 + t);
          if (!f && f.error().code != Errc::invalid_argument) ++wrong;
        }
      });
    }
    while (started < 3) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 5)));
    a.teardown();
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
  }
}

TEST(ArenaTeardown, CallsAfterTeardownFailCleanly) {
  Arena a = make_arena(8);
  auto p = a.alloc_pages(nullptr, 1);
  ASSERT_TRUE(p);
  a.teardown();
  auto again = a.alloc_pages(nullptr, 1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::invalid_argument);
  EXPECT_FALSE(a.free_pages(*p, 1));
  EXPECT_FALSE(a.reserve_pages(*p, 1));
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  EXPECT_EQ(a.page_state(off(*p)), PageState::empty);
  EXPECT_EQ(a.teardown().chunks, 0u);  // nothing left to do
}

TEST(ArenaCost, ASmallArenaCostsLittlePageTableMemory) {
  // Guarding the whole 4 GiB kernel view up front cost ~8 MiB of page tables
  // per arena and process; a 16-page arena must cost about what it uses.
  const std::uint64_t before = internal::os::page_table_bytes();
  std::vector<Arena> arenas;
  for (int i = 0; i < 8; ++i) {
    arenas.push_back(make_arena(16));
    auto p = arenas.back().alloc_pages(nullptr, 1);
    ASSERT_TRUE(p);
    bytes(*p)[0] = 1;
  }
  const std::uint64_t grown = internal::os::page_table_bytes() - before;
  EXPECT_LT(grown, 8u * (256u << 10)) << grown / 1024 << " KiB of page tables for 8 arenas";
}

}  // namespace
}  // namespace scxkit
