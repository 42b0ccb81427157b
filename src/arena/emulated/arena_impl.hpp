// The emulated arena behind scxkit::Arena. Internal: the public surface is
// include/scxkit/arena.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arena/backend.hpp"
#include "arena/emulated/arena_file.hpp"
#include "arena/emulated/call_gate.hpp"
#include "arena/emulated/shared_control.hpp"
#include "arena/emulated/view_server.hpp"
#include "arena/fault_handler.hpp"
#include "arena/os.hpp"
#include "arena/page_table.hpp"
#include "arena/range_tree.hpp"
#include "scxkit/arena.hpp"

namespace scxkit::internal {

// Work done in one hold of the arena lock (or one unmap slice) is bounded in
// time, so a huge free or a teardown never stalls other users for long.
inline constexpr std::uint64_t kMaxHoldNs = 150'000;

class ArenaImpl final : public FaultClaimer, public MissingPageHandler {
 public:
  friend struct ArenaAccess;
  static Result<std::unique_ptr<ArenaImpl>> create(const ArenaOptions& options);
  // Takes ownership of `fd`, a descriptor of an existing arena's memory file.
  static Result<std::unique_ptr<ArenaImpl>> open(int fd);
  // Opens an arena created with ArenaOptions::name.
  static Result<std::unique_ptr<ArenaImpl>> open_named(std::string_view name);
  ~ArenaImpl();

  ArenaImpl(const ArenaImpl&) = delete;
  ArenaImpl& operator=(const ArenaImpl&) = delete;

  // Page-allocator calls; addresses in user form, pages counted from user_vm_start.
  Result<std::uint64_t> alloc(std::uint64_t addr, std::uint32_t count, int node, bool may_sleep);
  Result<PauseStats> free(std::uint64_t addr, std::uint32_t count);
  Result<void> reserve(std::uint64_t addr, std::uint32_t count);
  PauseStats teardown();

  // A guard marker faulted (signal handler; async-signal-safe).
  bool claim_fault(const FaultInfo& fault) noexcept override;
  // A page missing from the file was touched (view server thread).
  void resolve_missing(std::uintptr_t addr) noexcept override;

  std::uint64_t user_vm_start() const { return user_vm_start_; }
  std::uint64_t user_vm_end() const { return user_vm_start_ + user_size(); }
  std::uint64_t kern_vm_start() const { return kern_vm_start_; }
  std::uint32_t max_entries() const { return max_entries_; }
  std::uint32_t map_flags() const { return map_flags_; }
  int fd() const { return gate_.closed() ? -1 : file_.fd(); }
  PageState page_state(std::uint32_t off) const;
  ArenaStats stats() const;

  // The arena lock, shared by every process that opened the arena. Holding
  // it also keeps this handle from being torn down.
  class Lock;
  Result<Lock> lock(bool may_sleep) const;
  bool lock_has_waiters() const;
  void let_waiters_in() const;
  // Runs step() (one bounded chunk; returns whether more is left) under the
  // lock until done, dropping the lock and letting waiters in about every
  // kMaxHoldNs; records each hold in `pauses`.
  template <class Step>
  Result<void> in_lock_slices(PauseStats& pauses, Step step);
  void repair_after_owner_death() const;

 private:
  enum class View { user, kern };

  explicit ArenaImpl(ArenaFile file)
      : scratch_ring_(new std::atomic<std::uint32_t>[kScratchResident]()), file_(std::move(file)) {}

  // Lifecycle (arena_lifecycle.cpp).
  static Result<std::unique_ptr<ArenaImpl>> join(ArenaFile file);
  Result<void> map_control(std::size_t size);
  Result<void> attach(bool pick_user_address);
  void release_all_pages(PauseStats& pauses);
  void unmap_views(PauseStats& pauses);
  // A call's right to run: fails cleanly once this handle is torn down (arena_lock.cpp).
  Result<CallGate::Pass> enter() const;

  std::size_t user_size() const { return std::size_t{max_entries_} * kPageSize; }
  std::atomic<std::uint32_t>& slot(std::uint32_t abs_page) const { return pages_->slot(abs_page); }
  bool in_user_view(std::uint32_t abs) const { return abs - first_page_ < max_entries_; }
  std::uintptr_t page_addr(View v, std::uint32_t abs) const {
    return v == View::kern ? kern_vm_start_ + std::uint64_t{abs} * kPageSize
                           : user_vm_start_ + std::uint64_t{abs - first_page_} * kPageSize;
  }

  // Page allocation's memory side (page_alloc.cpp): under the lock, gives
  // claimed slots [first, first+count) fresh zeroed pages, or fails leaving
  // none of them backed.
  Result<void> give_fresh_pages(std::uint32_t first, std::uint32_t count);
  // Frees one chunk; the runs whose pages could not be taken away stay
  // allocated and are counted in `kept`.
  void free_chunk(std::uint32_t pgoff, std::uint32_t count, std::uint64_t& kept, int& err);

  // Fault rules (view_faults.cpp). Under the lock, for a page missing from
  // the file: the kernel's rules.
  void resolve_missing_user(std::uint32_t abs) noexcept;
  void resolve_missing_kern(std::uint32_t abs) noexcept;
  bool claim_user_fault(std::uint32_t abs) noexcept;
  // Lifts this process's guard marker: the retried access maps the page if
  // the file has it, or is a missing-page event for the view server. False
  // when the marker could not be lifted (the retry would fault again).
  bool unguard(View v, std::uint32_t abs) noexcept;
  // Gives the file zeroed pages for slots [abs, abs+count); 0 or an errno value.
  int back(std::uint32_t abs, std::uint32_t count) noexcept;
  // Guards [abs, abs+count) of a view so accesses fault with SIGSEGV. Under
  // memory pressure (ENOMEM) it retries a few times; 0 or an errno value.
  int guard(View v, std::uint32_t abs, std::uint32_t count) noexcept;

  // Scratch recovery (scratch_recovery.cpp). Kernel-view faults: map
  // allocated pages; for a thread acting on behalf of a program that uses
  // this arena, recover a stray access with scratch.
  bool claim_kern_fault(std::uint32_t abs, const FaultInfo& fault) noexcept;
  // Lifts the guard over a scratch page, tracked so at most kScratchResident
  // scratch pages per arena are backed in this process.
  bool map_scratch(std::uint32_t abs) noexcept;
  void evict_scratch(std::uint32_t abs) noexcept;

  static constexpr std::uint32_t kScratchResident = 16384;      // 64 MiB of scratch backing
  std::unique_ptr<std::atomic<std::uint32_t>[]> scratch_ring_;  // abs page + 1, or 0
  std::atomic<std::uint64_t> scratch_ring_pos_{0};

  ArenaFile file_;
  mutable CallGate gate_;
  pid_t owner_pid_ = 0;  // the process that opened it; a forked child is no user
  std::unique_ptr<ViewServer> server_;
  Control* ctl_ = nullptr;
  std::size_t control_size_ = 0;
  std::unique_ptr<RangeTree> tree_;
  // Over the control block's slots and tree; lock(), a const call, may repair it.
  mutable std::optional<PageTable> pages_;
  std::uint32_t max_entries_ = 0;
  std::uint32_t map_flags_ = 0;
  std::uint32_t first_page_ = 0;  // slot index of user_vm_start
  std::uint64_t user_vm_start_ = 0;
  std::uintptr_t kern_reserve_ = 0;  // start of the 4 GiB + GUARD_SZ kernel view
  std::uint64_t kern_vm_start_ = 0;
  bool user_mapped_ = false;
  bool registered_ = false;
};

// Reaches the implementation behind a public Arena (programs, tests).
struct ArenaAccess {
  static ArenaImpl& impl(Arena& a) { return *a.backend_->emulation(); }
  static Arena make(std::unique_ptr<Backend> backend) { return Arena(std::move(backend)); }
  static bool lock_has_waiters(Arena& a) { return impl(a).lock_has_waiters(); }
  // Null for an arena on another backend.
  static ArenaImpl* emulation(Arena& a) { return a.backend_->emulation(); }
  // Tests play a process that died halfway through a change.
  static void set_slot(Arena& a, std::uint32_t off, SlotState state) {
    impl(a).slot(off / kPageSize).store(state);
  }
};

// A robust, process-shared mutex in the control block, held for its scope.
class ArenaImpl::Lock {
 public:
  Lock(pthread_mutex_t* m, CallGate::Pass pass) : m_(m), pass_(std::move(pass)) {}
  Lock(Lock&& o) noexcept : m_(std::exchange(o.m_, nullptr)), pass_(std::move(o.pass_)) {}
  Lock& operator=(Lock&&) = delete;
  ~Lock() {
    if (m_ != nullptr) pthread_mutex_unlock(m_);
  }

 private:
  pthread_mutex_t* m_;
  CallGate::Pass pass_;  // released after the mutex
};

template <class Step>
Result<void> ArenaImpl::in_lock_slices(PauseStats& pauses, Step step) {
  for (bool more = true; more;) {
    bool waiters = false;
    {
      auto guard = lock(true);
      if (!guard) return tl::unexpected(guard.error());
      const std::uint64_t t0 = os::monotonic_ns();
      do {
        more = step();
      } while (more && os::monotonic_ns() - t0 < kMaxHoldNs);
      pauses.record(os::monotonic_ns() - t0);
      waiters = lock_has_waiters();  // the unlock clears the mark
    }
    if (more && waiters) let_waiters_in();
  }
  return {};
}

}  // namespace scxkit::internal
