// The arena page programs (progs/arena_ops.bpf.c) loaded against one arena map
// and run from C++ with BPF_PROG_TEST_RUN: page allocation, free and
// reservation go through the kernel's own arena allocator, the same one BPF
// programs using that arena call.
#pragma once

#include <cstdint>
#include <memory>

#include "scxkit/error.hpp"

struct arena_ops;  // the generated skeleton

namespace scxkit::bpf {

class ArenaOps {
 public:
  // Opens the skeleton, points its arena at `arena_map_fd` and loads it.
  // Errors: unsupported (no BPF or no arenas here), system_error.
  static Result<ArenaOps> load(int arena_map_fd);

  ArenaOps(ArenaOps&&) noexcept;
  ArenaOps& operator=(ArenaOps&&) noexcept;
  ~ArenaOps();

  // bpf_arena_alloc_pages(): the user-form address of the first page, or 0
  // when the kernel refused (no room, range taken, bad address).
  Result<std::uint64_t> alloc_pages(std::uint64_t addr, std::uint32_t count, int node);
  Result<void> free_pages(std::uint64_t addr, std::uint32_t count);
  // bpf_arena_reserve_pages(): the kfunc's return value (0, -EBUSY, -EINVAL, ...).
  Result<int> reserve_pages(std::uint64_t addr, std::uint32_t count);

 private:
  struct Skeleton;
  explicit ArenaOps(std::unique_ptr<Skeleton> skel);
  std::unique_ptr<Skeleton> skel_;
};

}  // namespace scxkit::bpf
