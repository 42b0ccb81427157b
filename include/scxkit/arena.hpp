// scxkit::Arena — a BPF arena, either emulated in user space with the
// kernel's semantics (Linux 6.18 plus the 2026 direct-access series) or a real
// kernel BPF_MAP_TYPE_ARENA (ArenaOptions::backend). One API serves both; what
// only one backend can do fails with Errc::unsupported on the other, naming
// the backend (see "Backends" below and docs/ARENA.md).
//
// An arena is up to 4 GiB of sparsely allocated pages seen through two views:
//   * the user view: `max_entries` pages at `user_vm_start`, never crossing a
//     4 GiB boundary — what a process that mmaps a BPF arena sees;
//   * the kernel view: 4 GiB + GUARD_SZ of address space, with
//     kern_vm_start = base + GUARD_SZ/2 — what BPF programs dereference.
// An arena pointer is a 32-bit offset `off`: kernel address kern_vm_start+off,
// user address clear_low32(user_vm_start)+off. Both views are mappings of one
// shared memory file, so a page written through one reads back through the
// other, and a second process that opens the arena sees the same pages at the
// same user address.
//
// Pages are allocated with alloc_pages()/free_pages()/reserve_pages() exactly
// like the kfuncs bpf_arena_alloc_pages() and friends. Touching a page that is
// not allocated through the user view allocates a zeroed page lazily, or
// raises SIGSEGV when the arena was created with segv_on_fault — like the
// kernel, in every process that opened the arena, also right after another
// process freed the page, and also in threads that block every signal.
// Thread-safe; every call returns a Result and never aborts.
//
// Backends:
//   * emulated (default): everything above, in any process, no privileges.
//     Opened elsewhere by name (open) or descriptor (open_fd). Has the kernel
//     view (kern_view) and the direct-access model of scxkit/program.hpp.
//     Users: every create/open counts as one user until its teardown, death
//     or exec. The last one returns the memory and removes the name. A
//     process forked from a user is not a user (dropping its copy unmaps its
//     views, nothing more); open the arena in it again to share it. Needs
//     userfaultfd and guard markers (Linux 6.13+); docs/ARENA.md states the
//     design and its limits.
//   * kernel: a real BPF arena map (root or CAP_BPF, Linux 6.9+). Pages come
//     from the kernel's own allocator (bpf_arena_alloc_pages and friends run
//     by a small SEC("syscall") program), so C++ and BPF programs sharing the
//     map never get the same page. Opened elsewhere by map id, pinned path or
//     descriptor; handed to a libbpf object with attach_to(). The kernel view
//     is the kernel's own and not reachable from user space; page_state()
//     tells allocated pages from the rest, not free from reserved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "scxkit/error.hpp"

struct bpf_map;  // libbpf

namespace scxkit {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::uint64_t k4GiB = std::uint64_t{1} << 32;
// GUARD_SZ: 64 KiB rounded up to 2 pages.
inline constexpr std::uint64_t kGuardSize = 64 * 1024;
inline constexpr std::uint64_t kKernViewSize = k4GiB + kGuardSize;
inline constexpr std::uint32_t kMaxArenaPages = static_cast<std::uint32_t>(k4GiB / kPageSize);
inline constexpr int kNumaNoNode = -1;

// Map flags, with the kernel's values.
namespace arena_flags {
inline constexpr std::uint32_t mmapable = 1u << 10;       // BPF_F_MMAPABLE: required
inline constexpr std::uint32_t segv_on_fault = 1u << 17;  // BPF_F_SEGV_ON_FAULT
inline constexpr std::uint32_t no_user_conv = 1u << 18;   // BPF_F_NO_USER_CONV
}  // namespace arena_flags

// Which implementation stands behind an Arena.
enum class ArenaBackend : std::uint8_t {
  emulated,  // user-space emulation (shared memory file, two views)
  kernel,    // a real BPF_MAP_TYPE_ARENA map
};

struct ArenaOptions {
  std::uint32_t max_entries = 0;  // pages in the user view, 1 .. 4 GiB / 4096
  // Fixed user_vm_start, like map_extra; 0 lets scxkit pick an address that
  // does not cross a 4 GiB boundary. Must be page aligned.
  std::uint64_t map_extra = 0;
  std::uint32_t map_flags = arena_flags::mmapable;
  // Non-empty: the arena can also be opened by name from another process.
  // Emulated backend only (a kernel arena is shared by map id or pin).
  std::string name;
  ArenaBackend backend = ArenaBackend::emulated;
  // Kernel backend: the NUMA node the map's own memory comes from
  // (bpf_attr::numa_node), or kNumaNoNode.
  int numa_node = kNumaNoNode;
};

// One view's base: a pointer in that view is base + offset (one add).
struct ArenaView {
  std::uintptr_t base = 0;
};

// What a page slot holds. Only the arena changes it.
enum class PageState : std::uint8_t {
  empty,      // no page; not backed
  allocated,  // a page is there, in every view
  reserved,   // taken by reserve_pages(): not allocatable, not backed
  scratch,    // the scratch page was installed after a stray kernel-view access
  changing,   // an allocation or free is replacing the slot right now (emulated only)
  // The backend cannot tell. Kernel backend: no page backs the slot, and
  // the kernel does not tell a free slot from a reserved one.
  unknown,
};

struct ArenaStats {
  std::uint64_t allocated_pages = 0;  // including lazily faulted ones
  std::uint64_t lazy_pages = 0;       // allocated by a user-view fault
  std::uint64_t reserved_pages = 0;
  std::uint64_t scratch_pages = 0;  // slots holding scratch after stray kernel-view accesses
  std::uint64_t free_pages = 0;     // allocatable
  std::uint32_t free_extents = 0;
};

// Measured while a range is freed or the arena is torn down.
struct PauseStats {
  std::uint64_t chunks = 0;
  std::uint64_t longest_pause_ns = 0;  // longest single step (lock hold or unmap slice)
  std::uint64_t pauses_over_1ms = 0;

  void record(std::uint64_t pause_ns) {
    ++chunks;
    if (pause_ns > longest_pause_ns) longest_pause_ns = pause_ns;
    if (pause_ns > 1'000'000) ++pauses_over_1ms;
  }
};

namespace internal {
class Backend;
struct ArenaAccess;
}  // namespace internal

class Arena {
 public:
  // Creates a new arena. Errors: invalid_argument (max_entries 0, flags,
  // misaligned map_extra), too_big (over 4 GiB), out_of_range (user range
  // crosses a 4 GiB boundary), address_in_use (map_extra is taken);
  // kernel backend: unsupported (no BPF arenas here, or not permitted).
  static Result<Arena> create(const ArenaOptions& options);
  // Opens an arena created with a name, possibly by another process
  // (emulated). not_found if there is none, or if all its users died (the
  // name is then removed). An arena is named only once it is complete.
  static Result<Arena> open(std::string_view name);
  // Opens the arena behind a file descriptor obtained from fd() (e.g. passed
  // over a Unix socket): an emulated arena's memory file or a kernel arena's
  // map. The descriptor is duplicated; the caller keeps its own. Emulated:
  // not_found if no live user has the arena open any more.
  static Result<Arena> open_fd(int fd);
  // Kernel backend: opens an existing BPF arena map by id or pinned path and
  // maps it at its user address — map_extra, or where its first user mapped
  // it (read from the kernel by a small BPF program); an arena nobody has
  // mapped yet gets its address from this mapping. Errors: not_found,
  // invalid_argument (not an arena), address_in_use (this process maps it
  // already), unsupported (no BPF arenas or not permitted here).
  static Result<Arena> open_map_id(std::uint32_t id);
  static Result<Arena> open_pinned(const std::string& path);

  Arena(Arena&&) noexcept;
  Arena& operator=(Arena&&) noexcept;
  ~Arena();

  // bpf_arena_alloc_pages(): `count` pages at exactly `addr` (user form, page
  // aligned) or, with addr == nullptr, where the kernel's range tree puts
  // them (the smallest free extent that fits, most recently changed first).
  // Returns the user-form address of the first page; every view sees fresh
  // zeroed pages once it returns. May sleep on the arena lock. `node` is a
  // NUMA node or kNumaNoNode.
  Result<void*> alloc_pages(void* addr, std::uint32_t count, int node = kNumaNoNode);
  // As alloc_pages() but never sleeps: fails with Errc::busy at once when the
  // arena lock is taken. Safe where sleeping is not allowed. Kernel backend:
  // the kernel's non-sleeping allocation (bpf_arena_alloc_pages called from a
  // BPF program that cannot sleep), where the kernel's verifier allows it;
  // elsewhere (Linux 6.18) Errc::unsupported with the verifier's reason.
  Result<void*> try_alloc_pages(void* addr, std::uint32_t count, int node = kNumaNoNode);
  // bpf_arena_free_pages(): nullptr frees nothing; otherwise only the low 32
  // bits of addr matter; pages that are not allocated are skipped. Memory
  // goes back to the OS. A huge range is freed in chunks, handing the lock to
  // waiting users between chunks; the result tells how long the lock was
  // held at most.
  Result<PauseStats> free_pages(const void* addr, std::uint32_t count);
  // bpf_arena_reserve_pages(): takes [addr, addr+count) out of allocation
  // without backing it; Errc::busy if any page of it is allocated.
  Result<void> reserve_pages(const void* addr, std::uint32_t count);

  std::uint32_t max_entries() const;
  std::uint32_t map_flags() const;
  std::uint64_t user_vm_start() const;
  std::uint64_t user_vm_end() const;
  // The kernel view's start (arena offset 0). On the kernel backend this is
  // the kernel's own kern_vm_start, read from the map by a BPF program: an
  // address in kernel space, for turning addresses the kernel reports into
  // arena offsets (offset_of_kern), never dereferenceable here.
  std::uint64_t kern_vm_start() const;
  ArenaBackend backend() const;
  ArenaView user_view() const { return ArenaView{user_base_}; }
  // The kernel view this process can dereference. Errc::unsupported on the
  // kernel backend (the kernel's view is not mapped in user space).
  Result<ArenaView> kern_view() const;
  // The descriptor behind the arena (owned by the arena; -1 after
  // teardown()): the shared memory file (emulated) or the BPF map (kernel).
  // open_fd() in another process, or send_arena_fd(), shares the arena.
  int fd() const;
  // Kernel backend only (Errc::unsupported otherwise): the map's id, pinning
  // it in bpffs, and handing it to a libbpf object before that object is
  // loaded (bpf_map__reuse_fd), so the object's BPF programs and this Arena
  // share one heap. The map must be an arena map; its definition is replaced.
  Result<std::uint32_t> map_id() const;
  Result<void> pin(const std::string& path) const;
  Result<void> attach_to(struct ::bpf_map* map) const;

  // Pointer conversions. An offset is the low 32 bits of a user address.
  static std::uint32_t offset_of_user(const void* user_addr) {
    return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(user_addr));
  }
  // Also for a kernel backend's kernel addresses (see kern_vm_start()).
  std::uint32_t offset_of_kern(const void* kern_addr) const {
    return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(kern_addr) - kern_start_);
  }
  void* user_addr(std::uint32_t off) const { return reinterpret_cast<void*>(user_base_ + off); }
  // Unchecked, for hot paths: nullptr on the kernel backend (no kernel view).
  void* kern_addr(std::uint32_t off) const {
    return kern_base_ == 0 ? nullptr : reinterpret_cast<void*>(kern_base_ + off);
  }

  PageState page_state(std::uint32_t off) const;
  // Page accounting. Errc::unsupported on the kernel backend: the kernel
  // keeps it to itself (BPF programs allocate too).
  Result<ArenaStats> stats() const;

  // Unmaps this process's views and, when this was the last live user,
  // returns all pages to the OS and removes the arena's name. Unmapping goes
  // in slices, so other threads' page faults keep moving. The destructor does
  // the same; calling it explicitly reports the pauses. Calls racing it from
  // other threads finish first; later calls on this object fail cleanly
  // (invalid_argument).
  PauseStats teardown();

 private:
  friend struct internal::ArenaAccess;
  explicit Arena(std::unique_ptr<internal::Backend> backend);
  std::unique_ptr<internal::Backend> backend_;
  std::uintptr_t user_base_ = 0;   // clear_low32(user_vm_start)
  std::uintptr_t kern_start_ = 0;  // kern_vm_start
  std::uintptr_t kern_base_ = 0;   // kern_vm_start where this process maps the kernel view, else 0
};

// Passes an arena's descriptor to another process over a connected Unix
// socket (SCM_RIGHTS), and receives one there; hand the result to open_fd().
Result<void> send_arena_fd(int unix_socket, const Arena& arena);
Result<int> receive_arena_fd(int unix_socket);

}  // namespace scxkit
