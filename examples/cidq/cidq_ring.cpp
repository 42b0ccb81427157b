#include "cidq_ring.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstring>

namespace scx_cidq {

scxkit::Result<std::span<std::byte>> ArenaMapping::at(std::uint64_t addr, std::size_t bytes) const {
  const auto base = reinterpret_cast<std::uint64_t>(base_);
  // The user form carries the mapping's upper 32 bits; a bare offset, none.
  const std::uint64_t user = (base & ~0xffffffffULL) | (addr & 0xffffffffULL);
  const bool form_ok = (addr >> 32) == 0 || (addr >> 32) == (base >> 32);
  if (!form_ok || user < base || user - base > size_ || bytes > size_ - (user - base)) {
    return scxkit::make_error(
        scxkit::Errc::out_of_range,
        fmt::format("arena address {:#x} (+{} bytes) is outside the arena mapped at {:#x} ({} "
                    "bytes)",
                    addr, bytes, base, size_));
  }
  return std::span<std::byte>(base_ + (user - base), bytes);
}

scxkit::Result<scxkit::Cmask> CmaskEvent::mask() {
  if (bytes.size() <= 2) {
    return scxkit::make_error(
        scxkit::Errc::out_of_range,
        fmt::format("the cmask at {:#x} has more than {} words: not copied", addr, CIDQ_MAX_WORDS));
  }
  return scxkit::Cmask::attach(std::as_writable_bytes(std::span(bytes)));
}

std::uint64_t Ring::head() const {
  return std::atomic_ref<unsigned long long>(*head_).load(std::memory_order_acquire);
}

std::vector<CmaskEvent> Ring::drain() {
  std::vector<CmaskEvent> out;
  const std::uint64_t head = this->head();
  // Records the BPF side has lapped are gone.
  if (head > next_ + CIDQ_LOG_SLOTS) {
    lost_ += head - CIDQ_LOG_SLOTS - next_;
    next_ = head - CIDQ_LOG_SLOTS;
  }
  for (; next_ < head; ++next_) {
    cidq_record& slot = slots_[next_ % CIDQ_LOG_SLOTS];
    std::atomic_ref<unsigned long long> seq(slot.seq);
    const std::uint64_t want = next_ + 1;
    const std::uint64_t before = seq.load(std::memory_order_acquire);
    if (before < want) break;  // claimed, not yet written: stop here, keep order
    CmaskEvent e{.seq = want,
                 .kind = slot.kind,
                 .pid = slot.pid,
                 .cpu = slot.cpu,
                 .addr = slot.addr,
                 .bytes = {}};
    const unsigned words = slot.words;
    e.bytes.assign(slot.cmask, slot.cmask + 2 + (words <= CIDQ_MAX_WORDS ? words : 0));
    // A writer that lapped us while we copied leaves a newer seq: seqlock.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (before != want || seq.load(std::memory_order_relaxed) != want) {
      ++lost_;
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace scx_cidq
