// The kernel backend: a real BPF_MAP_TYPE_ARENA, mapped at its user address,
// with pages allocated by the kernel's own allocator through the arena page
// programs (bpf/arena_ops), so C++ and BPF programs never get the same page.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "arena/backend.hpp"
#include "arena/page_args.hpp"
#include "bpf/arena_inspect.hpp"
#include "bpf/arena_ops.hpp"
#include "bpf/arena_try_alloc.hpp"
#include "bpf/bpf_syscall.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit::internal {

class KernelBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> create(const ArenaOptions& options);
  // Maps an existing arena map at its user address (map_extra, or where its
  // first user mapped it; this mapping fixes it when nobody has).
  static Result<std::unique_ptr<Backend>> open(bpf::Fd map);
  static bool is_arena_map(int fd);
  ~KernelBackend() override;

  ArenaBackend kind() const override { return ArenaBackend::kernel; }
  Result<std::uint64_t> alloc(std::uint64_t addr, std::uint32_t count, int node,
                              bool may_sleep) override;
  Result<PauseStats> free(std::uint64_t addr, std::uint32_t count) override;
  Result<void> reserve(std::uint64_t addr, std::uint32_t count) override;
  PauseStats teardown() override;

  std::uint32_t max_entries() const override { return max_entries_; }
  std::uint32_t map_flags() const override { return map_flags_; }
  std::uint64_t user_vm_start() const override { return user_vm_start_; }
  // The kernel's kern_vm_start for this map (read by the inspection
  // programs from struct bpf_arena); only the kernel maps that view.
  std::uint64_t kern_vm_start() const override { return kern_vm_start_; }
  int fd() const override { return map_.get(); }
  // Allocated when a page backs the slot (read through the kernel view by
  // the arena inspection programs, allocating nothing); otherwise unknown:
  // free or reserved, which the kernel does not tell apart.
  PageState page_state(std::uint32_t off) const override;
  Result<std::uint32_t> map_id() const override { return id_; }
  Result<void> pin(const std::string& path) const override;
  Result<void> attach_to(::bpf_map* map) const override;

 private:
  explicit KernelBackend(bpf::Fd map) : map_(std::move(map)) {}
  // Maps the user view and loads the page and inspection programs.
  Result<void> attach();
  UserRange range() const { return {user_vm_start_, max_entries_}; }
  // The page programs, or an error once torn down.
  Result<bpf::ArenaOps*> ops();

  bpf::Fd map_;
  std::optional<ArenaMapping> view_;
  std::optional<bpf::ArenaOps> ops_;
  // The kernel's non-sleeping allocation, or why this kernel has none.
  std::optional<Result<bpf::ArenaTryAlloc>> try_alloc_;
  mutable std::optional<bpf::ArenaInspector> inspector_;
  std::uint32_t id_ = 0;
  std::uint32_t max_entries_ = 0;
  std::uint32_t map_flags_ = 0;
  std::uint64_t user_vm_start_ = 0;
  std::uint64_t kern_vm_start_ = 0;
};

}  // namespace scxkit::internal
