#include "bpf/arena_ops.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "arena_ops.skel.h"
#include "bpf/libbpf_util.hpp"
#include "bpf/progs/arena_ops.h"

namespace scxkit::bpf {

struct ArenaOps::Skeleton {
  arena_ops* skel = nullptr;
  ~Skeleton() { arena_ops__destroy(skel); }
};

namespace {

Result<scxkit_arena_op> run(const bpf_program* prog, scxkit_arena_op op) {
  if (auto r = test_run(prog, &op, sizeof(op)); !r) return tl::unexpected(r.error());
  return op;
}

}  // namespace

ArenaOps::ArenaOps(std::unique_ptr<Skeleton> skel) : skel_(std::move(skel)) {}
ArenaOps::ArenaOps(ArenaOps&&) noexcept = default;
ArenaOps& ArenaOps::operator=(ArenaOps&&) noexcept = default;
ArenaOps::~ArenaOps() = default;

Result<ArenaOps> ArenaOps::load(int arena_map_fd) {
  auto holder = std::make_unique<Skeleton>();
  holder->skel = arena_ops__open();
  if (holder->skel == nullptr) return libbpf_error("opening the arena_ops BPF object", errno);
  if (const int err = bpf_map__reuse_fd(holder->skel->maps.arena, arena_map_fd); err != 0) {
    return libbpf_error("handing the arena map to the arena_ops BPF object", err);
  }
  if (const int err = arena_ops__load(holder->skel); err != 0) {
    return load_error("arena_ops", err);
  }
  return ArenaOps(std::move(holder));
}

Result<std::uint64_t> ArenaOps::alloc_pages(std::uint64_t addr, std::uint32_t count, int node) {
  auto out = run(skel_->skel->progs.arena_alloc,
                 {.addr = addr, .count = count, .node = node, .ret = 0, .pad = 0});
  if (!out) return tl::unexpected(out.error());
  return out->addr;
}

Result<void> ArenaOps::free_pages(std::uint64_t addr, std::uint32_t count) {
  auto out = run(skel_->skel->progs.arena_free,
                 {.addr = addr, .count = count, .node = -1, .ret = 0, .pad = 0});
  if (!out) return tl::unexpected(out.error());
  return {};
}

Result<int> ArenaOps::reserve_pages(std::uint64_t addr, std::uint32_t count) {
  auto out = run(skel_->skel->progs.arena_reserve,
                 {.addr = addr, .count = count, .node = -1, .ret = 0, .pad = 0});
  if (!out) return tl::unexpected(out.error());
  return out->ret;
}

}  // namespace scxkit::bpf
