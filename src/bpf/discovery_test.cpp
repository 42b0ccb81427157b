// Program-set discovery against real loaded BPF objects: the maps each
// program uses, the one arena they share, and that arena outliving its object.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "bpf/bpf_objects.hpp"
#include "bpf/bpf_syscall.hpp"
#include "bpf/libbpf_util.hpp"
#include "interop.h"
#include "interop.skel.h"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit::bpf {
namespace {

// The interop object with its own arena of `pages` pages, loaded.
struct Loaded {
  interop* skel = nullptr;
  ~Loaded() { interop__destroy(skel); }
};

std::unique_ptr<Loaded> load_interop(std::uint32_t pages) {
  auto l = std::make_unique<Loaded>();
  l->skel = interop__open();
  if (l->skel == nullptr) return nullptr;
  bpf_map__set_max_entries(l->skel->maps.arena, pages);
  if (interop__load(l->skel) != 0) return nullptr;
  return l;
}

std::uint32_t id_of(const bpf_map* m) {
  auto info = map_info(bpf_map__fd(m));
  return info ? info->id : 0;
}

// A SEC("syscall") program using no map at all: "return 0".
Fd load_mapless_program() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .prog_flags = BPF_F_SLEEPABLE);
  return Fd(bpf_prog_load(BPF_PROG_TYPE_SYSCALL, "no_maps", "GPL", insns, 2, &opts));
}

struct DiscoveryTest : ::testing::Test {
  void SetUp() override {
    if (auto probe = create_arena_map(1, 0, arena_flags::mmapable); !probe) {
      GTEST_SKIP() << "no kernel BPF arena here: " << probe.error().message;
    }
  }
};

// Whether any mapping of this process overlaps [start, start + size).
bool range_is_mapped(std::uint64_t start, std::size_t size) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uint64_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && lo < start + size && start < hi) {
      return true;
    }
  }
  return false;
}

TEST_F(DiscoveryTest, FindsEveryProgramsMapsAndTheArenaTheyShare) {
  auto obj = load_interop(16);
  ASSERT_NE(obj, nullptr);
  auto set = discover_programs(*obj->skel->obj, ArenaNeed::required);
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->programs.size(), 4u);  // list_sum, list_build, page_tag, say
  ASSERT_TRUE(set->arena);
  EXPECT_EQ(set->arena->info().id, id_of(obj->skel->maps.arena));
  EXPECT_TRUE(set->arena->info().is_arena());
  EXPECT_EQ(set->arena->info().max_entries, 16u);
  for (const auto& p : set->programs) {
    if (p.name == "say") {  // prints to a stream and never touches the arena
      EXPECT_EQ(std::find(p.map_ids.begin(), p.map_ids.end(), set->arena->info().id),
                p.map_ids.end());
      continue;
    }
    EXPECT_NE(std::find(p.map_ids.begin(), p.map_ids.end(), set->arena->info().id), p.map_ids.end())
        << p.name << " uses the arena but its map ids do not say so";
  }
  EXPECT_TRUE(std::any_of(set->maps.begin(), set->maps.end(),
                          [&](const BpfMapInfo& m) { return m.id == set->arena->info().id; }));
}

TEST_F(DiscoveryTest, ArenaOutlivesTheObjectAndMapsAgainAtTheSameAddress) {
  auto obj = load_interop(16);
  ASSERT_NE(obj, nullptr);
  test_list_args args{.count = 100, .seed = 5};
  ASSERT_TRUE(test_run(obj->skel->progs.list_build, &args, sizeof(args)));
  ASSERT_NE(args.first_page, 0u);
  std::size_t size = 0;  // libbpf's own mapping of the arena:
  const auto start =
      reinterpret_cast<std::uint64_t>(bpf_map__initial_value(obj->skel->maps.arena, &size));

  auto set = discover_programs(*obj->skel->obj, ArenaNeed::required);
  ASSERT_TRUE(set) << set.error().message;
  auto twice = set->arena->map();
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::address_in_use) << twice.error().message;

  obj.reset();  // the object, its programs and its mapping are gone
  auto view = set->arena->map();
  if (!view && view.error().code == Errc::address_in_use && range_is_mapped(start, size)) {
    // An arena's user address is fixed for its life; once libbpf unmapped it, another
    // mapping of this process (ASan's allocator does this) may take the range first.
    GTEST_SKIP() << "another mapping took the arena's fixed user range after libbpf unmapped it: "
                 << view.error().message;
  }
  ASSERT_TRUE(view) << view.error().message;
  if (start != 0) {
    EXPECT_EQ(view->user_vm_start(), start);
  }
  std::uint32_t walked = 0;
  for (const test_node* n = ArenaPtr<test_node>(args.head).in(view->view()); n != nullptr;
       n = n->next.in(view->view())) {
    ASSERT_EQ(n->value, 5 + 7 * walked);
    ++walked;
  }
  EXPECT_EQ(walked, 100u);
}

TEST_F(DiscoveryTest, TwoDifferentArenasIsAnErrorNamingBoth) {
  auto a = load_interop(4), b = load_interop(4);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const int fds[] = {bpf_program__fd(a->skel->progs.list_sum),
                     bpf_program__fd(b->skel->progs.page_tag)};
  auto set = discover_programs(fds);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, Errc::invalid_argument);
  const std::string& msg = set.error().message;
  EXPECT_NE(msg.find(fmt::format("map {}", id_of(a->skel->maps.arena))), std::string::npos) << msg;
  EXPECT_NE(msg.find(fmt::format("map {}", id_of(b->skel->maps.arena))), std::string::npos) << msg;
  EXPECT_NE(msg.find("list_sum"), std::string::npos) << msg;
  EXPECT_NE(msg.find("page_tag"), std::string::npos) << msg;
}

TEST_F(DiscoveryTest, ProgramsWithoutAnArenaAreFineUnlessOneIsRequired) {
  Fd plain = load_mapless_program();
  ASSERT_GE(plain.get(), 0) << std::strerror(errno);
  auto obj = load_interop(4);
  ASSERT_NE(obj, nullptr);
  const int with_arena[] = {plain.get(), bpf_program__fd(obj->skel->progs.list_sum)};
  auto mixed = discover_programs(with_arena, ArenaNeed::required);
  ASSERT_TRUE(mixed) << mixed.error().message;
  EXPECT_EQ(mixed->programs.size(), 2u);
  EXPECT_TRUE(mixed->programs[0].map_ids.empty());
  ASSERT_TRUE(mixed->arena);

  const int alone[] = {plain.get()};
  auto optional = discover_programs(alone);
  ASSERT_TRUE(optional) << optional.error().message;
  EXPECT_FALSE(optional->arena);
  auto required = discover_programs(alone, ArenaNeed::required);
  ASSERT_FALSE(required);
  EXPECT_EQ(required.error().code, Errc::not_found);
  EXPECT_NE(required.error().message.find("no_maps"), std::string::npos)
      << required.error().message;
}

TEST_F(DiscoveryTest, ADescriptorThatIsNotAProgramIsRefused) {
  auto map = create_arena_map(1, 0, arena_flags::mmapable);
  ASSERT_TRUE(map);
  const int fds[] = {map->get()};
  auto set = discover_programs(fds);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, Errc::invalid_argument) << set.error().message;
}

TEST_F(DiscoveryTest, MappingAMapThatIsNotAnArenaIsRefused) {
  auto obj = load_interop(4);
  ASSERT_NE(obj, nullptr);
  // The object's .rodata (the stream format strings) is a map that is no arena.
  auto set = discover_programs(*obj->skel->obj);
  ASSERT_TRUE(set) << set.error().message;
  auto other = std::find_if(set->maps.begin(), set->maps.end(),
                            [](const BpfMapInfo& m) { return !m.is_arena(); });
  ASSERT_NE(other, set->maps.end());
  auto fd = open_map_by_id(other->id);
  ASSERT_TRUE(fd) << fd.error().message;
  auto view = map_kernel_arena(fd->get());
  ASSERT_FALSE(view);
  EXPECT_EQ(view.error().code, Errc::invalid_argument) << view.error().message;
}

}  // namespace
}  // namespace scxkit::bpf
