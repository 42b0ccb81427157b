// The emulated backend: the user-space emulation (ArenaImpl) behind the
// Backend interface, unchanged.
#pragma once

#include <memory>

#include "arena/backend.hpp"
#include "arena/emulated/arena_impl.hpp"

namespace scxkit::internal {

class EmulatedBackend final : public Backend {
 public:
  explicit EmulatedBackend(std::unique_ptr<ArenaImpl> impl) : impl_(std::move(impl)) {}

  ArenaBackend kind() const override { return ArenaBackend::emulated; }
  Result<std::uint64_t> alloc(std::uint64_t addr, std::uint32_t count, int node,
                              bool may_sleep) override {
    return impl_->alloc(addr, count, node, may_sleep);
  }
  Result<PauseStats> free(std::uint64_t addr, std::uint32_t count) override {
    return impl_->free(addr, count);
  }
  Result<void> reserve(std::uint64_t addr, std::uint32_t count) override {
    return impl_->reserve(addr, count);
  }
  PauseStats teardown() override { return impl_->teardown(); }

  std::uint32_t max_entries() const override { return impl_->max_entries(); }
  std::uint32_t map_flags() const override { return impl_->map_flags(); }
  std::uint64_t user_vm_start() const override { return impl_->user_vm_start(); }
  std::uint64_t kern_vm_start() const override { return impl_->kern_vm_start(); }
  bool maps_kern_view() const override { return true; }
  int fd() const override { return impl_->fd(); }
  PageState page_state(std::uint32_t off) const override { return impl_->page_state(off); }
  Result<ArenaStats> stats() const override { return impl_->stats(); }
  ArenaImpl* emulation() noexcept override { return impl_.get(); }

 private:
  std::unique_ptr<ArenaImpl> impl_;
};

}  // namespace scxkit::internal
