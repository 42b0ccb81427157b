// Looking inside a kernel BPF arena without changing it: the arena's fixed
// user address range and which of its pages are backed, read by the
// progs/arena_inspect.bpf.c programs loaded against the arena's map.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit::bpf {

struct ArenaLayout {
  std::uint64_t user_vm_start = 0;  // where every user mapping of the arena must start
  std::uint64_t user_vm_end = 0;
  std::uint64_t kern_vm_start = 0;  // the kernel view's base (arena offset 0)
};

class ArenaInspector {
 public:
  // Loads the inspection programs against `arena_map_fd`. Errors:
  // not_found when the arena has no user address yet (nobody has mmapped it
  // and map_extra is 0: the kernel then refuses any program using it; such an
  // arena has no pages either), unsupported (no BPF, arenas or root here),
  // system_error.
  static Result<ArenaInspector> load(int arena_map_fd);

  ArenaInspector(ArenaInspector&&) noexcept;
  ArenaInspector& operator=(ArenaInspector&&) noexcept;
  ~ArenaInspector();

  Result<ArenaLayout> layout();
  // Element i: page i of the arena is backed by a page (allocated, or made by
  // a user-view fault). Reserved pages are not backed. Pages 0 .. pages-1.
  Result<std::vector<bool>> backed_pages(std::uint32_t pages) { return backed_pages(0, pages); }
  // The same for pages first .. first+count-1.
  Result<std::vector<bool>> backed_pages(std::uint32_t first, std::uint32_t count);

 private:
  struct Skeleton;
  explicit ArenaInspector(std::unique_ptr<Skeleton> skel);
  std::unique_ptr<Skeleton> skel_;
};

}  // namespace scxkit::bpf
