// A process holding a real BPF arena for the `scxkit arena show` and `scxkit
// prog stderr` CLI tests: it loads tests/bpf/interop.bpf.c against an arena
// of 64 pages, lets the BPF program build a list (2 pages, and a line on its
// stderr stream) and allocate 3 tagged pages, touches page 40 through its user
// view (the kernel allocates it on the fault), pins the arena at
// PIN_DIR/arena, prints one line of ids and waits until its stdin closes (at
// most 120 s). It unpins on the way out. Exit 77: this kernel has no arenas.
//
//   bpf_arena_holder PIN_DIR
//   -> map_id=12 list_build_id=40 say_id=43 pages=6 printed=yes
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "bpf/bpf_objects.hpp"
#include "bpf/bpf_syscall.hpp"
#include "bpf/libbpf_util.hpp"
#include "interop.h"
#include "interop.skel.h"
#include "scxkit/bpf_discovery.hpp"

using namespace scxkit;

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "bpf_arena_holder: %s\n", what.c_str());
  return 1;
}

std::uint32_t prog_id(const bpf_program* p) {
  auto info = bpf::prog_info(bpf_program__fd(p));
  return info ? info->id : 0;
}

// Until stdin reaches EOF, or 120 s: every wait has a deadline.
void wait_for_stdin_eof() {
  char buf[64];
  for (int waited_ms = 0; waited_ms < 120'000; waited_ms += 1000) {
    pollfd p{0, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0 && read(0, buf, sizeof(buf)) <= 0) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return fail("usage: bpf_arena_holder PIN_DIR");
  libbpf_set_print(nullptr);
  auto map = bpf::create_arena_map(64, 0, arena_flags::mmapable);
  if (!map) {
    fail(map.error().message);
    return 77;  // no kernel arenas here: the test is skipped
  }
  auto view = map_kernel_arena(map->get());
  if (!view) return fail(view.error().message);
  interop* skel = interop__open();
  if (skel == nullptr) return fail("opening the interop BPF object");
  struct Destroy {
    interop* s;
    ~Destroy() { interop__destroy(s); }
  } destroy{skel};
  if (bpf_map__reuse_fd(skel->maps.arena, map->get()) != 0 || interop__load(skel) != 0) {
    return fail("loading the interop BPF programs");
  }
  test_list_args list{.count = 300, .seed = 1};
  if (!bpf::test_run(skel->progs.list_build, &list, sizeof(list)) || list.first_page == 0) {
    return fail("list_build did not build its list");
  }
  for (int i = 0; i < 3; ++i) {
    test_tag_args tag{.tag = static_cast<std::uint64_t>(i), .addr = 0};
    if (!bpf::test_run(skel->progs.page_tag, &tag, sizeof(tag)) || tag.addr == 0) {
      return fail("page_tag could not allocate");
    }
  }
  *static_cast<volatile char*>(
      view->user_addr(static_cast<std::uint32_t>(view->user_vm_start()) + 40 * kPageSize)) = 1;
  auto said = bpf::test_run(skel->progs.say, nullptr, 0);
  if (!said) return fail(said.error().message);

  const std::string pin = std::string(argv[1]) + "/arena";
  if (bpf_obj_pin(map->get(), pin.c_str()) != 0) {
    return fail("pinning the arena at " + pin + ": " + std::strerror(errno));
  }
  auto info = bpf::map_info(map->get());
  std::printf("map_id=%u list_build_id=%u say_id=%u pages=6 printed=%s\n", info ? info->id : 0,
              prog_id(skel->progs.list_build), prog_id(skel->progs.say), *said == 0 ? "yes" : "no");
  std::fflush(stdout);
  wait_for_stdin_eof();
  unlink(pin.c_str());
  return 0;
}
