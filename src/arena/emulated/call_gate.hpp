// Lets calls into an object run until it is closed, and lets close() wait
// until the calls in flight have left — so a teardown racing other threads'
// calls makes them fail cleanly instead of touching unmapped memory.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace scxkit::internal {

class CallGate {
 public:
  class Pass {
   public:
    explicit Pass(CallGate* g) : g_(g) {}
    Pass(Pass&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
    Pass(const Pass&) = delete;
    ~Pass() {
      if (g_ != nullptr) g_->state_.fetch_sub(1, std::memory_order_release);
    }
    explicit operator bool() const { return g_ != nullptr; }

   private:
    CallGate* g_;
  };

  // A pass that keeps the object open while held; empty once it is closed.
  Pass enter() {
    if ((state_.fetch_add(1, std::memory_order_acquire) & kClosed) != 0) {
      state_.fetch_sub(1, std::memory_order_release);
      return Pass(nullptr);
    }
    return Pass(this);
  }
  // Closes the gate and waits for every pass to be returned. Only the first
  // caller gets true.
  bool close() {
    if ((state_.fetch_or(kClosed, std::memory_order_acq_rel) & kClosed) != 0) return false;
    while ((state_.load(std::memory_order_acquire) & ~kClosed) != 0) sched_yield();
    return true;
  }
  bool closed() const { return (state_.load(std::memory_order_acquire) & kClosed) != 0; }

 private:
  static constexpr std::uint64_t kClosed = std::uint64_t{1} << 63;
  std::atomic<std::uint64_t> state_{0};
};

}  // namespace scxkit::internal
