// The kernel's non-sleeping arena page allocation, where the kernel has one:
// progs/arena_try_alloc.bpf.c, a program that cannot sleep calling
// bpf_arena_alloc_pages, run with BPF_PROG_TEST_RUN.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "scxkit/error.hpp"

namespace scxkit::bpf {

class ArenaTryAlloc {
 public:
  // Loads the program against `arena_map_fd`. Errors: unsupported when this
  // kernel lets only sleepable programs allocate arena pages (the verifier's
  // reason in the message), or has no BPF arenas; system_error.
  static Result<ArenaTryAlloc> load(int arena_map_fd);

  ArenaTryAlloc(ArenaTryAlloc&&) noexcept;
  ArenaTryAlloc& operator=(ArenaTryAlloc&&) noexcept;
  ~ArenaTryAlloc();

  // bpf_arena_alloc_pages() on the kernel's non-sleeping path: the user-form
  // address of the first page, or 0 when the kernel refused (no room, range
  // taken, or what it needed was not to be had without waiting). Errc::busy
  // when another thread of this process is in this call (the result travels
  // in one global).
  Result<std::uint64_t> alloc_pages(std::uint64_t addr, std::uint32_t count, int node);

 private:
  struct Skeleton;
  explicit ArenaTryAlloc(std::unique_ptr<Skeleton> skel);
  std::unique_ptr<Skeleton> skel_;
};

}  // namespace scxkit::bpf
