// A second process for the arena sharing tests. It opens an arena (from a
// descriptor received on a Unix socket, or by name), checks that the first
// page holds "first" at the expected user address, allocates the next page
// and writes "second" into it. Exit code 0 means all of that held.
#include <cstdlib>
#include <cstring>
#include <string>

#include "scxkit/arena.hpp"

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const std::string how = argv[1];
  const std::uint64_t want_start = std::strtoull(argv[3], nullptr, 16);
  scxkit::Result<scxkit::Arena> arena = scxkit::make_error(scxkit::Errc::invalid_argument, how);
  if (how == "fd") {
    auto fd = scxkit::receive_arena_fd(std::atoi(argv[2]));
    if (!fd) return 10;
    arena = scxkit::Arena::open_fd(*fd);
  } else {
    arena = scxkit::Arena::open(argv[2]);
  }
  if (!arena) return 11;
  if (arena->user_vm_start() != want_start) return 12;
  if (std::strcmp(static_cast<char*>(reinterpret_cast<void*>(want_start)), "first") != 0) return 13;
  auto page = arena->alloc_pages(nullptr, 1);
  if (!page || *page == reinterpret_cast<void*>(want_start)) return 14;
  std::strcpy(static_cast<char*>(*page), "second");
  return 0;
}
