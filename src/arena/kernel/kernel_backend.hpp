// The kernel backend: a real BPF_MAP_TYPE_ARENA, mapped at its user address,
// with pages allocated by the kernel's own allocator through the arena page
// programs (bpf/arena_ops), so C++ and BPF programs never get the same page.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "arena/backend.hpp"
#include "arena/page_args.hpp"
#include "bpf/arena_ops.hpp"
#include "bpf/bpf_syscall.hpp"

namespace scxkit::internal {

class KernelBackend final : public Backend {
 public:
  static Result<std::unique_ptr<Backend>> create(const ArenaOptions& options);
  // Maps an existing arena map. user_vm_start: where its users mapped it,
  // needed only when the map has no map_extra.
  static Result<std::unique_ptr<Backend>> open(bpf::Fd map, std::uint64_t user_vm_start);
  static Result<bpf::Fd> map_fd_by_id(std::uint32_t id);
  static Result<bpf::Fd> map_fd_by_pin(const std::string& path);
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
  int fd() const override { return map_.get(); }
  // Allocated when this process has the page mapped in its user view
  // (mincore); otherwise unknown — the kernel keeps allocation to itself.
  PageState page_state(std::uint32_t off) const override;
  Result<std::uint32_t> map_id() const override { return id_; }
  Result<void> pin(const std::string& path) const override;
  Result<void> attach_to(::bpf_map* map) const override;

 private:
  KernelBackend() = default;
  // Maps the user view at user_vm_start_ (over `reservation` when non-zero)
  // and loads the page programs against the map.
  Result<void> attach(std::uintptr_t reservation);
  UserRange range() const { return {user_vm_start_, max_entries_}; }
  // The page programs, or an error once torn down.
  Result<bpf::ArenaOps*> ops();

  bpf::Fd map_;
  std::optional<bpf::ArenaOps> ops_;
  std::uint32_t id_ = 0;
  std::uint32_t max_entries_ = 0;
  std::uint32_t map_flags_ = 0;
  std::uint64_t user_vm_start_ = 0;
  bool mapped_ = false;
};

}  // namespace scxkit::internal
