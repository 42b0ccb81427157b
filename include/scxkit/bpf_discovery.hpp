// Finding the maps a set of loaded BPF programs uses, and the one BPF arena
// they share — what sched_ext does for a cid-form scheduler's programs.
//
// Give it a loaded libbpf object or a list of program fds. Every program's
// maps are read from the kernel (BPF_OBJ_GET_INFO_BY_FD, map_ids). Programs
// that use no arena are fine; programs using two different arenas are an
// error naming both; finding none is an error only when the caller requires
// an arena. The arena found holds its own map descriptor, so it stays alive
// after the object and its programs are gone, and can be mapped again:
//
//   auto set = scxkit::discover_programs(*obj, scxkit::ArenaNeed::required);
//   bpf_object__close(obj);
//   auto view = set->arena->map();     // the same pages, at the same address
//
// Needs root (or CAP_BPF + CAP_PERFMON) and, for arenas, Linux 6.9+.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "scxkit/arena.hpp"
#include "scxkit/error.hpp"

struct bpf_object;

namespace scxkit {

namespace internal {
class ProgramSetBuilder;
}  // namespace internal

inline constexpr std::uint32_t kBpfMapTypeArena = 33;

struct BpfMapInfo {
  std::uint32_t id = 0;
  std::uint32_t type = 0;
  std::string name;
  std::uint32_t max_entries = 0;
  std::uint32_t map_flags = 0;
  std::uint64_t map_extra = 0;  // for an arena: the user address fixed at creation, or 0
  bool is_arena() const { return type == kBpfMapTypeArena; }
};

struct BpfProgramInfo {
  std::uint32_t id = 0;
  std::string name;
  std::uint32_t type = 0;
  std::vector<std::uint32_t> map_ids;  // in the kernel's order
};

// A user-space view of a kernel arena: the map mmapped at the arena's user
// address (fixed by the arena's first mapping, or by map_extra). Unmapped on
// destruction; the pages stay in the arena.
class ArenaMapping {
 public:
  ArenaMapping(ArenaMapping&& o) noexcept;
  ArenaMapping& operator=(ArenaMapping&& o) noexcept;
  ~ArenaMapping();

  std::uint64_t user_vm_start() const { return start_; }
  std::uint64_t user_vm_end() const { return start_ + size_; }
  // The base arena pointers resolve against: ArenaPtr<T>::in(view()).
  ArenaView view() const { return ArenaView{static_cast<std::uintptr_t>(start_ & ~0xffffffffull)}; }
  void* user_addr(std::uint32_t off) const { return reinterpret_cast<void*>(view().base + off); }

 private:
  friend Result<ArenaMapping> map_kernel_arena(int map_fd);
  ArenaMapping(std::uint64_t start, std::uint64_t size) : start_(start), size_(size) {}
  std::uint64_t start_ = 0;
  std::uint64_t size_ = 0;
};

// Maps the kernel arena behind `map_fd` read-write. Touching a page of the
// view that the arena has not allocated allocates it (or raises SIGSEGV with
// BPF_F_SEGV_ON_FAULT), as for any arena mapping. Errors: invalid_argument
// (not an arena map), address_in_use (this process maps the arena already,
// e.g. through the libbpf object that created it: use that mapping or close
// the object first), unsupported, system_error.
Result<ArenaMapping> map_kernel_arena(int map_fd);

// An arena map found in use by a program set. Copies share one descriptor.
class KernelArenaMap {
 public:
  const BpfMapInfo& info() const;
  int fd() const;  // owned by this object (and its copies)
  Result<ArenaMapping> map() const { return map_kernel_arena(fd()); }

 private:
  friend class internal::ProgramSetBuilder;
  struct State;
  explicit KernelArenaMap(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

enum class ArenaNeed { optional, required };

struct ProgramSet {
  std::vector<BpfProgramInfo> programs;
  std::vector<BpfMapInfo> maps;  // every map any program uses, once each, by first use
  std::optional<KernelArenaMap> arena;
};

// Errors: invalid_argument (a descriptor that is not a BPF program, two
// different arenas), not_found (ArenaNeed::required and no arena, or an object
// with no loaded program), unsupported (not permitted), system_error.
Result<ProgramSet> discover_programs(std::span<const int> prog_fds,
                                     ArenaNeed need = ArenaNeed::optional);
// Every loaded program of `obj` (programs with autoload off are skipped).
Result<ProgramSet> discover_programs(const bpf_object& obj, ArenaNeed need = ArenaNeed::optional);

}  // namespace scxkit
