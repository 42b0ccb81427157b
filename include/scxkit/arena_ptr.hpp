// ArenaPtr<T>: a typed 32-bit arena pointer, the C++ twin of a BPF program's
// `T __arena *`. It stores the arena offset, so the same value is valid in
// every view of the arena and in every process; converting it to a real
// pointer in a view is one add. Offset 0 is null, as in BPF code.
#pragma once

#include <cstdint>

#include "scxkit/arena.hpp"

namespace scxkit {

template <class T>
class ArenaPtr {
 public:
  constexpr ArenaPtr() = default;
  constexpr explicit ArenaPtr(std::uint32_t offset) : off_(offset) {}

  // The arena pointer for `p`, a pointer into `view` (nullptr gives null).
  static ArenaPtr from(ArenaView view, const T* p) {
    return p == nullptr ? ArenaPtr()
                        : ArenaPtr(static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p) -
                                                              view.base));
  }

  // The object in `view`, or nullptr for a null arena pointer.
  T* in(ArenaView view) const {
    return off_ == 0 ? nullptr : reinterpret_cast<T*>(view.base + off_);
  }

  constexpr std::uint32_t offset() const { return off_; }
  constexpr explicit operator bool() const { return off_ != 0; }
  friend constexpr bool operator==(ArenaPtr, ArenaPtr) = default;

  // Pointer arithmetic in units of T, like the BPF original.
  constexpr ArenaPtr operator+(std::int64_t n) const {
    return ArenaPtr(static_cast<std::uint32_t>(off_ + n * static_cast<std::int64_t>(sizeof(T))));
  }

 private:
  std::uint32_t off_ = 0;
};

static_assert(sizeof(ArenaPtr<int>) == 4, "an arena pointer is 32 bits, as in BPF");

}  // namespace scxkit
