// The kernel backend as a user meets it: a real BPF arena map other processes
// open by id, pinned path or descriptor, handed to a libbpf object so its BPF
// programs and C++ share one heap. Skips where BPF arenas are unavailable.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "arena/test_support.hpp"
#include "arena_ops.skel.h"
#include "bpf/bpf_syscall.hpp"
#include "bpf/progs/arena_ops.h"

namespace scxkit {
namespace {

using internal::testing_support::create_on;
using internal::testing_support::in_child;
using internal::testing_support::run_peer;

char* bytes(void* p) {
  return static_cast<char*>(p);
}

class KernelArena : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = create_on(ArenaBackend::kernel, {.max_entries = 16});
    if (!a && a.error().code == Errc::unsupported) GTEST_SKIP() << a.error().message;
    ASSERT_TRUE(a) << a.error().message;
    arena_.emplace(std::move(*a));
  }
  Arena& arena() { return *arena_; }
  void* page(std::uint32_t i) {
    return reinterpret_cast<void*>(arena().user_vm_start() + std::uint64_t{i} * kPageSize);
  }
  std::string start() { return fmt::format("{:x}", arena().user_vm_start()); }
  // The peer found "first" in page 0 and wrote "second" into the page the
  // kernel gave it, the next one; our next allocation must not get it again.
  void expect_shared(int peer_rc) {
    ASSERT_EQ(peer_rc, 0);
    EXPECT_STREQ(bytes(page(1)), "second");
    auto next = arena().alloc_pages(nullptr, 1);
    ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(*next, page(2));
  }
  void write_first() {
    auto p = arena().alloc_pages(nullptr, 1);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_EQ(*p, page(0));
    std::strcpy(bytes(*p), "first");
  }
  std::optional<Arena> arena_;
};

TEST_F(KernelArena, IsARealArenaMapThatRecordsItsUserAddress) {
  EXPECT_EQ(arena().backend(), ArenaBackend::kernel);
  auto id = arena().map_id();
  ASSERT_TRUE(id) << id.error().message;
  const int fd = bpf_map_get_fd_by_id(*id);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_map_get_info_by_fd(fd, &info, &len), 0);
  close(fd);
  EXPECT_EQ(info.type, 33u);  // BPF_MAP_TYPE_ARENA
  EXPECT_EQ(info.max_entries, 16u);
  EXPECT_EQ(info.map_extra, arena().user_vm_start()) << "another process must find the address";
  EXPECT_EQ(arena().user_vm_start() >> 32, (arena().user_vm_end() - 1) >> 32);
}

TEST_F(KernelArena, AnotherProcessOpensItByMapId) {
  write_first();
  expect_shared(run_peer({"map-id", std::to_string(*arena().map_id()), start()}));
}

TEST_F(KernelArena, AnotherProcessOpensItThroughAPassedDescriptor) {
  write_first();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_TRUE(send_arena_fd(sv[0], arena()));
  const int rc = run_peer({"fd", std::to_string(sv[1]), start()}, sv[1]);
  close(sv[0]);
  close(sv[1]);
  expect_shared(rc);
}

TEST_F(KernelArena, AnotherProcessOpensItByPinnedPath) {
  // bpffs may not be mounted here: a child mounts one in a private mount
  // namespace, where the pin and the peer live and die with it.
  write_first();
  const std::string id = std::to_string(*arena().map_id());
  const int status = in_child([&] {
    if (unshare(CLONE_NEWNS) != 0) _exit(20);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(20);
    char dir[] = "/tmp/scxkit-bpffs.XXXXXX";
    if (mkdtemp(dir) == nullptr) _exit(20);
    int rc = 20;
    if (mount("bpf", dir, "bpf", 0, nullptr) == 0) {
      const std::string path = std::string(dir) + "/arena";
      // This child has no user view (fork does not copy it); the map is what is pinned.
      rc = arena().pin(path) ? run_peer({"pin", path, start()}) : 21;
      umount2(dir, MNT_DETACH);
    }
    rmdir(dir);
    _exit(rc);
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  if (WEXITSTATUS(status) == 20) GTEST_SKIP() << "no private bpffs mount possible here";
  expect_shared(WEXITSTATUS(status));
}

// As a libbpf object without map_extra creates it: the first mapping fixes
// the address, and the kernel's struct bpf_arena is the only record of it.
TEST(KernelArenaOpen, AnArenaWithoutMapExtraIsFoundWhereItsFirstUserMappedIt) {
  auto map = bpf::create_arena_map(16, 0, arena_flags::mmapable);
  if (!map) GTEST_SKIP() << "no kernel BPF arena here: " << map.error().message;
  const std::size_t size = 16 * kPageSize;
  void* at = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, map->get(), 0);
  ASSERT_NE(at, MAP_FAILED) << std::strerror(errno);
  std::strcpy(bytes(at), "first");  // page 0, allocated by this user-view fault
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_map_get_info_by_fd(map->get(), &info, &len), 0);
  EXPECT_EQ(info.map_extra, 0u);
  const int rc = run_peer({"map-id", std::to_string(info.id),
                           fmt::format("{:x}", reinterpret_cast<std::uintptr_t>(at))});
  EXPECT_EQ(rc, 0);
  EXPECT_STREQ(bytes(at) + kPageSize, "second");
  munmap(at, size);
}

TEST(KernelArenaOpen, AnArenaNobodyMappedGetsItsAddressFromTheFirstOpen) {
  auto map = bpf::create_arena_map(16, 0, arena_flags::mmapable);
  if (!map) GTEST_SKIP() << "no kernel BPF arena here: " << map.error().message;
  bpf_map_info info{};
  std::uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_map_get_info_by_fd(map->get(), &info, &len), 0);
  auto a = Arena::open_map_id(info.id);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->user_vm_start() >> 32, (a->user_vm_end() - 1) >> 32);
  auto p = a->alloc_pages(nullptr, 1);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, reinterpret_cast<void*>(a->user_vm_start()));
}

TEST_F(KernelArena, PageStateTellsAllocatedPagesFromTheRestWithoutAllocatingAny) {
  ASSERT_TRUE(arena().alloc_pages(page(3), 1));
  ASSERT_TRUE(arena().reserve_pages(page(5), 1));
  const auto state = [&](std::uint32_t i) {
    return arena().page_state(Arena::offset_of_user(page(i)));
  };
  EXPECT_EQ(state(3), PageState::allocated);
  EXPECT_EQ(state(4), PageState::unknown);  // free
  EXPECT_EQ(state(5), PageState::unknown);  // reserved: the kernel does not tell them apart
  EXPECT_EQ(state(16), PageState::empty);   // past the arena
  // Looking allocated nothing: the free page is still allocatable.
  EXPECT_TRUE(arena().alloc_pages(page(4), 1));
}

TEST_F(KernelArena, OpeningTheSameArenaTwiceInOneProcessSaysTheAddressIsTaken) {
  auto again = Arena::open_map_id(*arena().map_id());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::address_in_use);
}

TEST_F(KernelArena, ALibbpfObjectGivenTheArenaAllocatesFromTheSameHeap) {
  arena_ops* skel = arena_ops__open();
  ASSERT_NE(skel, nullptr);
  ASSERT_TRUE(arena().attach_to(skel->maps.arena));
  ASSERT_EQ(arena_ops__load(skel), 0);
  // The object's BPF program allocates; C++ sees the page and cannot get it.
  scxkit_arena_op op{.addr = 0, .count = 2, .node = -1, .ret = 0, .pad = 0};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &op, .ctx_size_in = sizeof(op));
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.arena_alloc), &opts), 0);
  ASSERT_NE(op.addr, 0u);
  void* bpf_page = reinterpret_cast<void*>(op.addr);
  // Known without touching (a touch could allocate): read through the kernel view.
  EXPECT_EQ(arena().page_state(Arena::offset_of_user(bpf_page)), PageState::allocated);
  EXPECT_EQ(arena().page_state(Arena::offset_of_user(bpf_page) + kPageSize), PageState::allocated);
  EXPECT_EQ(bytes(bpf_page)[0], 0);
  auto taken = arena().alloc_pages(bpf_page, 1);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, Errc::busy);
  for (int i = 0; i < 14; ++i) {
    auto p = arena().alloc_pages(nullptr, 1);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_NE(Arena::offset_of_user(*p) / kPageSize, Arena::offset_of_user(bpf_page) / kPageSize);
    EXPECT_NE(Arena::offset_of_user(*p) / kPageSize,
              Arena::offset_of_user(bpf_page) / kPageSize + 1);
  }
  EXPECT_EQ(arena().alloc_pages(nullptr, 1).error().code, Errc::no_space);
  // A loaded object cannot be given another map.
  EXPECT_FALSE(arena().attach_to(skel->maps.arena));
  arena_ops__destroy(skel);
}

TEST_F(KernelArena, ReportsTheKernelsOwnKernelViewAddressWithoutMappingIt) {
  // Read from the map's struct bpf_arena by a BPF program: an address in the
  // kernel's half, page aligned, where the kernel's view of this arena starts.
  const std::uint64_t kern = arena().kern_vm_start();
  EXPECT_GE(kern, 0xffff'8000'0000'0000ull) << std::hex << kern;
  EXPECT_EQ(kern % kPageSize, 0u);
  EXPECT_EQ(arena().offset_of_kern(reinterpret_cast<void*>(kern + 0x3000)), 0x3000u);
  // Each arena has its own 4 GiB + guard kernel view.
  auto other = create_on(ArenaBackend::kernel, {.max_entries = 1});
  ASSERT_TRUE(other) << other.error().message;
  const std::uint64_t k2 = other->kern_vm_start();
  EXPECT_GE(k2 > kern ? k2 - kern : kern - k2, k4GiB + kGuardSize / 2);
  // Opening the same map elsewhere reports the same address.
  auto again = Arena::open_fd(arena().fd());
  if (again)
    EXPECT_EQ(again->kern_vm_start(), kern);
  else
    EXPECT_EQ(again.error().code, Errc::address_in_use) << again.error().message;
}

TEST_F(KernelArena, WhatOnlyTheEmulationHasIsUnsupportedAndSaysSo) {
  const auto says_kernel = [](const Error& e) {
    return e.code == Errc::unsupported &&
           e.message.find("kernel arena backend") != std::string::npos;
  };
  auto view = arena().kern_view();
  ASSERT_FALSE(view);
  EXPECT_TRUE(says_kernel(view.error())) << view.error().message;
  EXPECT_EQ(arena().kern_addr(0), nullptr);
  auto stats = arena().stats();
  ASSERT_FALSE(stats);
  EXPECT_TRUE(says_kernel(stats.error())) << stats.error().message;
  auto named = Arena::create({.max_entries = 1, .name = "x", .backend = ArenaBackend::kernel});
  ASSERT_FALSE(named);
  EXPECT_TRUE(says_kernel(named.error())) << named.error().message;
}

TEST(EmulatedArena, WhatOnlyKernelArenasHaveIsUnsupportedAndSaysSo) {
  auto a = Arena::create({.max_entries = 4});
  ASSERT_TRUE(a) << a.error().message;
  const auto says_emulated = [](const Error& e) {
    return e.code == Errc::unsupported &&
           e.message.find("emulated arena backend") != std::string::npos;
  };
  EXPECT_TRUE(says_emulated(a->map_id().error()));
  EXPECT_TRUE(says_emulated(a->pin("/sys/fs/bpf/x").error()));
  EXPECT_TRUE(says_emulated(a->attach_to(nullptr).error()));
}

TEST(KernelArenaCreate, RejectsBadInputWithTheSameErrorsAsTheEmulation) {
  const auto code = [](ArenaOptions o) {
    o.backend = ArenaBackend::kernel;
    auto a = Arena::create(o);
    return a ? Errc::system_error : a.error().code;
  };
  if (code({.max_entries = 1}) == Errc::unsupported) GTEST_SKIP() << "no kernel BPF arena here";
  EXPECT_EQ(code({.max_entries = 0}), Errc::invalid_argument);
  EXPECT_EQ(code({.max_entries = kMaxArenaPages + 1}), Errc::too_big);
  EXPECT_EQ(code({.max_entries = 1, .map_flags = 0}), Errc::invalid_argument);
  EXPECT_EQ(code({.max_entries = 1, .map_flags = arena_flags::mmapable | 1u}),
            Errc::invalid_argument);
  EXPECT_EQ(code({.max_entries = 1, .map_extra = 0x7000'0000'0100}), Errc::invalid_argument);
  EXPECT_EQ(code({.max_entries = 2, .map_extra = 0x7000'ffff'f000}), Errc::out_of_range);
  EXPECT_EQ(code({.max_entries = 1, .map_extra = std::uint64_t{1} << 48}), Errc::out_of_range);
}

TEST(KernelArenaNuma, ANodeForTheMapWorksOrIsRefusedOnlyBecauseOfTheNode) {
  auto plain = create_on(ArenaBackend::kernel, {.max_entries = 4});
  if (!plain && plain.error().code == Errc::unsupported) GTEST_SKIP() << plain.error().message;
  ASSERT_TRUE(plain) << plain.error().message;
  plain->teardown();
  // Linux 6.18 refuses BPF_F_NUMA_NODE for arena maps; where a kernel takes
  // it, the arena works.
  auto numa = create_on(ArenaBackend::kernel, {.max_entries = 4, .numa_node = 0});
  if (!numa) {
    EXPECT_EQ(numa.error().code, Errc::unsupported) << numa.error().message;
    EXPECT_NE(numa.error().message.find("refuses a NUMA node"), std::string::npos)
        << numa.error().message;
    GTEST_SKIP() << numa.error().message;
  }
  auto p = numa->alloc_pages(nullptr, 2, 0);
  ASSERT_TRUE(p) << p.error().message;
  std::strcpy(bytes(*p), "node 0");
  EXPECT_EQ(numa->page_state(Arena::offset_of_user(*p)), PageState::allocated);
  // A bad map argument with a node is reported as that, not as the node.
  auto bad = create_on(ArenaBackend::kernel,
                       {.max_entries = 1, .map_extra = 0x7000'0000'0100, .numa_node = 0});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_argument) << bad.error().message;
}

TEST_F(KernelArena, TryAllocUsesTheKernelsNonSleepingAllocatorWhereItHasOne) {
  auto p = arena().try_alloc_pages(nullptr, 2);
  if (!p) {
    // Probed by loading a program that cannot sleep: its verifier's refusal.
    EXPECT_EQ(p.error().code, Errc::unsupported) << p.error().message;
    EXPECT_NE(p.error().message.find("only sleepable BPF programs"), std::string::npos)
        << p.error().message;
    GTEST_SKIP() << p.error().message;
  }
  // The kernel's own allocator: placement, sharing and refusals as alloc_pages.
  EXPECT_EQ(*p, page(0));
  std::strcpy(bytes(page(1)), "never slept");
  EXPECT_EQ(arena().page_state(Arena::offset_of_user(page(1))), PageState::allocated);
  auto taken = arena().try_alloc_pages(page(1), 1);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, Errc::busy) << taken.error().message;
  auto next = arena().alloc_pages(nullptr, 1);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(*next, page(2));
  ASSERT_TRUE(arena().free_pages(*p, 2));
  auto again = arena().try_alloc_pages(page(1), 1);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(bytes(*again)[0], 0) << "a fresh page";
  auto full = arena().try_alloc_pages(nullptr, 16);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::no_space) << full.error().message;
}

}  // namespace
}  // namespace scxkit
