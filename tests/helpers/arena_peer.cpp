// A second process for the arena sharing tests.
//
//   arena_peer fd SOCKET START    receive the arena's descriptor on SOCKET
//   arena_peer name NAME START    open the arena by name
//   arena_peer map-id ID START    open a kernel arena by BPF map id
//   arena_peer pin PATH START     open a kernel arena pinned at PATH
//     Checks that the page at START holds "first", allocates the next page
//     and writes "second" into it. Exit 0 means all of that held.
//
//   arena_peer after-free NAME START SOCKET
//     Opens by name and reads the page at START (so it is mapped here), says
//     'r' on SOCKET, waits for 'f' (the other process freed the page), then
//     writes "after" into it. The write must fault like any access to a page
//     that is not allocated; exit 0 when it returns.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "scxkit/arena.hpp"

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const std::string how = argv[1];
  const std::uint64_t start = std::strtoull(argv[3], nullptr, 16);
  auto* first = reinterpret_cast<char*>(start);
  scxkit::Result<scxkit::Arena> arena = scxkit::make_error(scxkit::Errc::invalid_argument, how);
  if (how == "fd") {
    auto fd = scxkit::receive_arena_fd(std::atoi(argv[2]));
    if (!fd) return 10;
    arena = scxkit::Arena::open_fd(*fd);
  } else if (how == "map-id") {
    arena =
        scxkit::Arena::open_map_id(static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10)));
  } else if (how == "pin") {
    arena = scxkit::Arena::open_pinned(argv[2]);
  } else {
    arena = scxkit::Arena::open(argv[2]);
  }
  if (!arena) return 11;
  if (arena->user_vm_start() != start) return 12;
  if (std::strcmp(first, "first") != 0) return 13;
  if (how == "after-free" && argc == 5) {
    const int sock = std::atoi(argv[4]);
    char c = 'r';
    if (write(sock, &c, 1) != 1 || read(sock, &c, 1) != 1 || c != 'f') return 15;
    std::strcpy(first, "after");
    return 0;
  }
  auto page = arena->alloc_pages(nullptr, 1);
  if (!page || *page == first) return 14;
  std::strcpy(static_cast<char*>(*page), "second");
  return 0;
}
