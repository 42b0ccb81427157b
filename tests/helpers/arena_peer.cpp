// A second process for the arena sharing tests. START is a user address in hex.
//
//   arena_peer fd SOCKET START    receive the arena's descriptor on SOCKET
//   arena_peer name NAME START    open the arena by name
//   arena_peer map-id ID START    open a kernel arena by BPF map id
//   arena_peer pin PATH START     open a kernel arena pinned at PATH
//     Checks that the page at START holds "first", allocates the next page
//     and writes "second" into it. Exit 0 means all of that held.
//
//   arena_peer after-free NAME START SOCKET [block-rt]
//     Opens by name and reads the page at START (so it is mapped here), says
//     'r' on SOCKET, waits for 'f' (the other process freed the page), then
//     writes "after" into it. The write must fault like any access to a page
//     that is not allocated; exit 0 when it returns. With block-rt the peer
//     first blocks every real-time signal (as some servers do).
//
//   arena_peer hold NAME START SOCKET
//     Opens by name, reads the page at START, says 'r', then waits for the
//     socket to close (or to be killed) and exits without tearing down.
//
//   arena_peer fd-hold SOCKET START
//     Receives the arena's descriptor on SOCKET and opens it, checks the page
//     at START holds "first", says 'r', waits for the socket to close, then
//     ends normally (tearing its Arena down).
//
//   arena_peer create-loop NAME 0 COUNT
//     Creates and tears down a 16-page arena NAME, COUNT times.
//
//   arena_peer create-hold NAME 0 SOCKET
//     Creates a 16-page arena NAME, allocates a page holding "first", says 'r'
//     and waits to be killed.
//
//   arena_peer stray NAME START
//     Opens by name and, on behalf of a program using the arena, reads every
//     page of the kernel view from START's offset on, round and round, forever:
//     stray accesses the arena recovers with scratch.
//
//   arena_peer ignored-segv - 0
//     Sets SIGSEGV to SIG_IGN before scxkit loads, creates an arena, sends
//     itself SIGSEGV with kill(); exit 0 when it is still alive afterwards.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "scxkit/arena.hpp"
#include "scxkit/program.hpp"

namespace {

bool say_ready_and_wait(int sock, char want) {
  char c = 'r';
  if (write(sock, &c, 1) != 1) return false;
  if (want == 0) {
    while (read(sock, &c, 1) > 0) {
    }
    return true;
  }
  return read(sock, &c, 1) == 1 && c == want;
}

int stray_forever(scxkit::Arena& arena, std::uint32_t first_off) {
  scxkit::Program prog("stray", &arena, 4096);
  scxkit::ProgramScope scope(prog);
  for (std::uint64_t i = 0;; ++i) {
    const auto off = static_cast<std::uint32_t>(first_off + (i % arena.max_entries()) * 4096);
    (void)*static_cast<volatile char*>(arena.kern_addr(off));
    if (i % 4096 == 0) prog.stream(scxkit::StreamId::err).read_all();
  }
}

int ignored_segv() {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  if (sigaction(SIGSEGV, &ign, nullptr) != 0) return 20;
  auto arena = scxkit::Arena::create({.max_entries = 4});
  if (!arena) return 21;
  if (kill(getpid(), SIGSEGV) != 0) return 22;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const std::string how = argv[1];
  if (how == "ignored-segv") return ignored_segv();
  if (how == "create-loop" && argc == 5) {
    for (int i = 0; i < std::atoi(argv[4]); ++i) {
      auto a = scxkit::Arena::create({.max_entries = 16, .name = argv[2]});
      if (a) a->teardown();
    }
    return 0;
  }
  const std::uint64_t start = std::strtoull(argv[3], nullptr, 16);
  auto* first = reinterpret_cast<char*>(start);
  scxkit::Result<scxkit::Arena> arena = scxkit::make_error(scxkit::Errc::invalid_argument, how);
  if (how == "fd" || how == "fd-hold") {
    auto fd = scxkit::receive_arena_fd(std::atoi(argv[2]));
    if (!fd) return 10;
    arena = scxkit::Arena::open_fd(*fd);
  } else if (how == "create-hold") {
    arena = scxkit::Arena::create({.max_entries = 16, .name = argv[2]});
    if (!arena) return 11;
    auto page = arena->alloc_pages(nullptr, 1);
    if (!page) return 14;
    std::strcpy(static_cast<char*>(*page), "first");
    return argc == 5 && say_ready_and_wait(std::atoi(argv[4]), 0) ? 0 : 15;
  } else if (how == "map-id") {
    arena =
        scxkit::Arena::open_map_id(static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10)));
  } else if (how == "pin") {
    arena = scxkit::Arena::open_pinned(argv[2]);
  } else {
    arena = scxkit::Arena::open(argv[2]);
  }
  if (!arena) return 11;
  if (how == "stray") return stray_forever(*arena, scxkit::Arena::offset_of_user(first));
  if (arena->user_vm_start() != start) return 12;
  if (std::strcmp(first, "first") != 0) return 13;
  if (how == "hold" && argc == 5) return say_ready_and_wait(std::atoi(argv[4]), 0) ? 0 : 15;
  if (how == "fd-hold") return say_ready_and_wait(std::atoi(argv[2]), 0) ? 0 : 15;
  if (how == "after-free" && argc >= 5) {
    if (argc == 6 && std::string(argv[5]) == "block-rt") {
      sigset_t rt;
      sigemptyset(&rt);
      for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) sigaddset(&rt, s);
      if (sigprocmask(SIG_BLOCK, &rt, nullptr) != 0) return 16;
    }
    if (!say_ready_and_wait(std::atoi(argv[4]), 'f')) return 15;
    std::strcpy(first, "after");
    return 0;
  }
  auto page = arena->alloc_pages(nullptr, 1);
  if (!page || *page == first) return 14;
  std::strcpy(static_cast<char*>(*page), "second");
  return 0;
}
