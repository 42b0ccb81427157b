// arena_list: a BPF program and this C++ program share one linked list in a
// BPF arena. Run as root:  sudo build/release/examples/arena_list/arena_list
//
//  1. The skeleton (list.skel.h, generated from list.bpf.c by the build) opens
//     and loads the BPF object; libbpf creates the arena and maps it here.
//  2. scxkit::discover_programs() finds the arena the programs share.
//  3. BPF pushes nodes; C++ walks them through 32-bit arena pointers.
//  4. C++ links nodes of its own into the list; BPF sums the whole list.
// With --hold it then waits for Enter, so `scxkit arena show` and `scxkit
// prog stderr` can look at the live arena and programs.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "list.h"
#include "list.skel.h"
#include "scxkit/arena_ptr.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace {

// Runs a SEC("syscall") program once; `args` is its argument block, which
// the kernel copies back with the results.
template <class Args>
bool run(const bpf_program* prog, Args& args) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));
  const int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
  if (err != 0 || opts.retval != 0) {
    std::fprintf(stderr, "arena_list: running %s failed (%s, returned %d)\n",
                 bpf_program__name(prog), std::strerror(-err), static_cast<int>(opts.retval));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool hold = argc > 1 && std::string(argv[1]) == "--hold";

  list* skel = list__open_and_load();
  if (skel == nullptr) {
    std::fprintf(stderr,
                 "arena_list: loading list.bpf.c failed (%s): run as root on Linux 6.9+ with "
                 "BPF arenas (`scxkit doctor` tells)\n",
                 std::strerror(errno));
    return 1;
  }
  int status = 1;
  do {
    auto set = scxkit::discover_programs(*skel->obj, scxkit::ArenaNeed::required);
    if (!set) {
      std::fprintf(stderr, "arena_list: %s\n", set.error().message.c_str());
      break;
    }
    const scxkit::BpfMapInfo& arena = set->arena->info();
    std::printf("arena: BPF map %u '%s', %u pages, shared by %zu programs\n", arena.id,
                arena.name.c_str(), arena.max_entries, set->programs.size());

    // libbpf mapped the arena at its user address; arena pointers (offsets)
    // resolve against the 4 GiB-aligned base below it.
    std::size_t size = 0;
    const auto user =
        reinterpret_cast<std::uintptr_t>(bpf_map__initial_value(skel->maps.arena, &size));
    const scxkit::ArenaView view{user & ~std::uintptr_t{0xffffffff}};

    for (std::uint64_t v : {10, 20, 30}) {
      list_push args{.value = v};
      if (!run(skel->progs.push, args)) break;
    }
    std::printf("BPF pushed 10 20 30; C++ walks:");
    for (auto* n = scxkit::ArenaPtr<list_node>(skel->bss->head).in(view); n != nullptr;
         n = n->next.in(view)) {
      std::printf(" %llu", static_cast<unsigned long long>(n->value));
    }
    std::printf("\n");

    // C++ gets a page from the kernel's arena allocator (through BPF) and
    // links two nodes of its own in front.
    list_page page{};
    if (!run(skel->progs.give_page, page) || page.addr == 0) break;
    auto* mine = reinterpret_cast<list_node*>(page.addr) + 1;  // slot 0 could be offset 0
    mine[0] = {scxkit::ArenaPtr<list_node>::from(view, &mine[1]), 0, 1000};
    mine[1] = {scxkit::ArenaPtr<list_node>(skel->bss->head), 0, 2000};
    skel->bss->head = scxkit::ArenaPtr<list_node>::from(view, &mine[0]).offset();
    std::printf("C++ linked 1000 2000 in front\n");

    list_sum total{};
    if (!run(skel->progs.sum, total)) break;
    std::printf("BPF sums the whole list: %llu over %u nodes (expected 3060 over 5)\n",
                static_cast<unsigned long long>(total.sum), total.count);
    if (total.sum != 3060 || total.count != 5) break;

    if (hold) {
      bpf_prog_info info{};
      __u32 len = sizeof(info);
      bpf_prog_get_info_by_fd(bpf_program__fd(skel->progs.sum), &info, &len);
      std::printf("holding; try:  scxkit arena show --map-id %u\n", arena.id);
      std::printf("               scxkit prog stderr --id %u\n", info.id);
      std::printf("press Enter to exit\n");
      std::fflush(stdout);
      std::getchar();
    }
    status = 0;
  } while (false);
  list__destroy(skel);
  return status;
}
