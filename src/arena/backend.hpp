// The interface every arena backend implements, behind scxkit::Arena.
//
// What every backend does: page allocation (alloc with and without an
// address, never-sleeping alloc, free, reserve) with the kernel's semantics,
// geometry, the user view, page state, teardown. What only some can do has a
// default here that fails with Errc::unsupported naming the backend; a backend
// overrides what it has. Backends live in their own folders (emulated/,
// kernel/); Arena::create() is the one place that picks one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "scxkit/arena.hpp"

namespace scxkit::internal {

class ArenaImpl;

std::string_view to_string(ArenaBackend kind);
// "<what> is not available on the <kind> arena backend: <why>".
tl::unexpected<Error> unsupported(ArenaBackend kind, std::string_view what, std::string_view why);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual ArenaBackend kind() const = 0;

  // Page allocator; addresses in user form. may_sleep == false: never block.
  virtual Result<std::uint64_t> alloc(std::uint64_t addr, std::uint32_t count, int node,
                                      bool may_sleep) = 0;
  virtual Result<PauseStats> free(std::uint64_t addr, std::uint32_t count) = 0;
  virtual Result<void> reserve(std::uint64_t addr, std::uint32_t count) = 0;
  virtual PauseStats teardown() = 0;

  virtual std::uint32_t max_entries() const = 0;
  virtual std::uint32_t map_flags() const = 0;
  virtual std::uint64_t user_vm_start() const = 0;
  virtual int fd() const = 0;
  virtual PageState page_state(std::uint32_t off) const = 0;

  // Only some backends.
  // Where arena offset 0 is in the kernel view (0: the backend has none), and
  // whether this process maps that view so it can dereference it.
  virtual std::uint64_t kern_vm_start() const { return 0; }
  virtual bool maps_kern_view() const { return false; }
  virtual Result<ArenaStats> stats() const {
    return unsupported(kind(), "page accounting (stats)", "the backend does not keep it");
  }
  virtual Result<std::uint32_t> map_id() const {
    return unsupported(kind(), "a BPF map id", "only kernel arenas are BPF maps");
  }
  virtual Result<void> pin(const std::string&) const {
    return unsupported(kind(), "pinning", "only kernel arenas are BPF maps");
  }
  virtual Result<void> attach_to(::bpf_map*) const {
    return unsupported(kind(), "attach_to", "only kernel arenas are BPF maps");
  }
  // The emulation object for its internal peers (programs, tests); null elsewhere.
  virtual ArenaImpl* emulation() noexcept { return nullptr; }
};

}  // namespace scxkit::internal
