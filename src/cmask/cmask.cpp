// cmask operations on the 64-cid grid (kernel/sched/ext/cid.c semantics).
#include "scxkit/cmask.hpp"

#include <fmt/format.h>

#include <atomic>
#include <bit>
#include <cstring>

namespace scxkit {

namespace {

constexpr std::uint64_t genmask(unsigned hi, unsigned lo) {
  return (~0ULL << lo) & (~0ULL >> (63 - hi));
}

std::string window(std::uint32_t base, std::uint32_t nr_cids) {
  return fmt::format("[{}, {})", base, std::uint64_t{base} + nr_cids);
}

Result<void> check_window(std::uint32_t base, std::uint32_t nr_cids) {
  if (std::uint64_t{base} + nr_cids > UINT32_MAX) {
    return make_error(Errc::out_of_range, fmt::format("cmask window {} passes the largest cid {}",
                                                      window(base, nr_cids), UINT32_MAX - 1));
  }
  return {};
}

Result<void> check_storage(std::span<std::byte> storage) {
  if (reinterpret_cast<std::uintptr_t>(storage.data()) % alignof(std::uint64_t) != 0) {
    return make_error(Errc::invalid_argument,
                      "cmask storage must be 8-byte aligned (struct scx_cmask holds u64 words)");
  }
  return {};
}

// Calls fn(a_word_index, b_word_index, mask) for each word of the overlap of
// windows a and b, with mask selecting the overlap's bits in that word; stops
// early when fn returns true and returns whether it did.
template <class Fn>
bool for_each_overlap_word(std::uint32_t a_base, std::uint32_t a_nr, std::uint32_t b_base,
                           std::uint32_t b_nr, Fn&& fn) {
  const std::uint32_t lo = std::max(a_base, b_base);
  const std::uint32_t hi = std::min(a_base + a_nr, b_base + b_nr);
  if (lo >= hi) return false;
  const std::uint32_t lo_word = lo / 64, hi_word = (hi - 1) / 64;
  for (std::uint32_t w = lo_word; w <= hi_word; ++w) {
    std::uint64_t mask = ~0ULL;
    if (w == lo_word) mask &= genmask(63, lo & 63);
    if (w == hi_word) mask &= genmask((hi - 1) & 63, 0);
    if (fn(w - a_base / 64, w - b_base / 64, mask)) return true;
  }
  return false;
}

}  // namespace

Result<Cmask> Cmask::init(std::span<std::byte> storage, std::uint32_t base, std::uint32_t nr_cids,
                          std::uint32_t alloc_cids) {
  if (auto ok = check_storage(storage); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_window(base, nr_cids); !ok) return tl::unexpected(ok.error());
  if (alloc_cids < nr_cids) {
    return make_error(Errc::invalid_argument,
                      fmt::format("cmask window of {} cids does not fit storage for {} cids",
                                  nr_cids, alloc_cids));
  }
  if (storage.size() < cmask_bytes(alloc_cids)) {
    return make_error(Errc::no_space,
                      fmt::format("a cmask for {} cids needs {} bytes; the storage has {}",
                                  alloc_cids, cmask_bytes(alloc_cids), storage.size()));
  }
  auto* header = reinterpret_cast<CmaskHeader*>(storage.data());
  header->base = base;
  header->nr_cids = nr_cids;
  header->alloc_words = cmask_nr_words(alloc_cids);
  std::memset(header + 1, 0, std::size_t{header->alloc_words} * 8);
  return Cmask(header);
}

Result<Cmask> Cmask::attach(std::span<std::byte> storage) {
  if (auto ok = check_storage(storage); !ok) return tl::unexpected(ok.error());
  if (storage.size() < kCmaskHeaderBytes) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("{} bytes cannot hold a cmask header (16 bytes)", storage.size()));
  }
  Cmask m(reinterpret_cast<CmaskHeader*>(storage.data()));
  if (auto ok = check_window(m.base(), m.nr_cids()); !ok) return tl::unexpected(ok.error());
  if (m.size_bytes() > storage.size() || m.used_word_count() > m.alloc_words()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("not a valid cmask: window {} in {} words of storage, {} "
                                  "bytes available",
                                  window(m.base(), m.nr_cids()), m.alloc_words(), storage.size()));
  }
  // Padding bits are zero in every cmask the kernel or scxkit wrote; set
  // ones mean the bytes are something else (or a different layout).
  const auto words = m.used_words();
  if (!words.empty()) {
    const std::uint64_t head = words.front() & ~genmask(63, m.base() & 63);
    const std::uint64_t tail = words.back() & ~genmask((m.end() - 1) & 63, 0);
    if (head != 0 || tail != 0) {
      return make_error(Errc::invalid_argument,
                        fmt::format("not a valid cmask: padding bits outside window {} are set",
                                    window(m.base(), m.nr_cids())));
    }
  }
  return m;
}

std::size_t Cmask::used_word_count() const {
  if (nr_cids() == 0) return 0;
  return ((base() & 63) + std::size_t{nr_cids()} - 1) / 64 + 1;
}

Result<void> Cmask::reframe(std::uint32_t new_base, std::uint32_t new_nr_cids) {
  if (auto ok = check_window(new_base, new_nr_cids); !ok) return ok;
  if (cmask_nr_words(new_nr_cids) > alloc_words()) {
    return make_error(Errc::no_space,
                      fmt::format("cannot reframe to {}: {} cids need {} words, the storage has {}",
                                  window(new_base, new_nr_cids), new_nr_cids,
                                  cmask_nr_words(new_nr_cids), alloc_words()));
  }
  if (new_nr_cids != 0) {
    bits()[0] = 0;
    bits()[((new_base & 63) + new_nr_cids - 1) / 64] = 0;
  }
  header_->base = new_base;
  header_->nr_cids = new_nr_cids;
  return {};
}

Result<void> Cmask::check_cid(std::uint32_t cid) const {
  if (contains(cid)) return {};
  return make_error(Errc::out_of_range, fmt::format("cid {} is outside the cmask window {}", cid,
                                                    window(base(), nr_cids())));
}

Result<bool> Cmask::test(std::uint32_t cid) const {
  if (auto ok = check_cid(cid); !ok) return tl::unexpected(ok.error());
  return (std::atomic_ref(*word_of(cid)).load(std::memory_order_relaxed) >> (cid & 63)) & 1;
}

Result<bool> Cmask::update(std::uint32_t cid, bool set, bool atomic) {
  if (auto ok = check_cid(cid); !ok) return tl::unexpected(ok.error());
  const std::uint64_t bit = 1ULL << (cid & 63);
  std::uint64_t& word = *word_of(cid);
  if (atomic) {
    std::atomic_ref<std::uint64_t> ref(word);
    const std::uint64_t old = set ? ref.fetch_or(bit, std::memory_order_acq_rel)
                                  : ref.fetch_and(~bit, std::memory_order_acq_rel);
    return (old & bit) != 0;
  }
  const std::uint64_t old = word;
  word = set ? old | bit : old & ~bit;
  return (old & bit) != 0;
}

namespace {
Result<void> drop(const Result<bool>& r) {
  return r.map([](bool) {});
}
}  // namespace

Result<void> Cmask::set(std::uint32_t cid) {
  return drop(update(cid, true, false));
}
Result<void> Cmask::clear(std::uint32_t cid) {
  return drop(update(cid, false, false));
}
Result<bool> Cmask::test_and_set(std::uint32_t cid) {
  return update(cid, true, false);
}
Result<bool> Cmask::test_and_clear(std::uint32_t cid) {
  return update(cid, false, false);
}
Result<void> Cmask::atomic_set(std::uint32_t cid) {
  return drop(update(cid, true, true));
}
Result<void> Cmask::atomic_clear(std::uint32_t cid) {
  return drop(update(cid, false, true));
}
Result<bool> Cmask::atomic_test_and_set(std::uint32_t cid) {
  return update(cid, true, true);
}
Result<bool> Cmask::atomic_test_and_clear(std::uint32_t cid) {
  return update(cid, false, true);
}

void Cmask::zero() {
  std::memset(bits(), 0, used_word_count() * 8);
}

namespace {

enum class Op { and_, or_, andnot, copy };

Result<void> combine(const Cmask& dst_view, std::uint64_t* dst, const Cmask& src_view,
                     const std::uint64_t* src, Op op) {
  const std::uint32_t lo = std::max(dst_view.base(), src_view.base());
  const std::uint32_t hi = std::min(dst_view.end(), src_view.end());
  if (lo >= hi && !dst_view.empty_window() && !src_view.empty_window()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("cmask windows {} and {} do not overlap, so the operation "
                                  "cannot change anything; reframe one of them",
                                  window(dst_view.base(), dst_view.nr_cids()),
                                  window(src_view.base(), src_view.nr_cids())));
  }
  for_each_overlap_word(dst_view.base(), dst_view.nr_cids(), src_view.base(), src_view.nr_cids(),
                        [&](std::uint32_t di, std::uint32_t si, std::uint64_t mask) {
                          const std::uint64_t s = src[si];
                          std::uint64_t& d = dst[di];
                          switch (op) {
                            case Op::and_:
                              d &= ~mask | s;
                              break;
                            case Op::or_:
                              d |= s & mask;
                              break;
                            case Op::andnot:
                              d &= ~(s & mask);
                              break;
                            case Op::copy:
                              d = (d & ~mask) | (s & mask);
                              break;
                          }
                          return false;
                        });
  return {};
}

}  // namespace

Result<void> Cmask::and_with(const Cmask& src) {
  return combine(*this, bits(), src, src.bits(), Op::and_);
}
Result<void> Cmask::or_with(const Cmask& src) {
  return combine(*this, bits(), src, src.bits(), Op::or_);
}
Result<void> Cmask::andnot_with(const Cmask& src) {
  return combine(*this, bits(), src, src.bits(), Op::andnot);
}
Result<void> Cmask::copy_from(const Cmask& src) {
  return combine(*this, bits(), src, src.bits(), Op::copy);
}

bool Cmask::subset_of(const Cmask& super) const {
  // Set cids outside super's window cannot be in super.
  if (auto cid = next_set(base()); cid && *cid < super.base()) return false;
  if (super.end() < end()) {
    if (auto cid = next_set(std::max(base(), super.end()))) return false;
  }
  const std::uint64_t* a = bits();
  const std::uint64_t* b = super.bits();
  return !for_each_overlap_word(base(), nr_cids(), super.base(), super.nr_cids(),
                                [&](std::uint32_t ai, std::uint32_t bi, std::uint64_t mask) {
                                  return (a[ai] & ~b[bi] & mask) != 0;
                                });
}

bool Cmask::equal(const Cmask& other) const {
  return subset_of(other) && other.subset_of(*this);
}

bool Cmask::intersects(const Cmask& other) const {
  const std::uint64_t* a = bits();
  const std::uint64_t* b = other.bits();
  return for_each_overlap_word(base(), nr_cids(), other.base(), other.nr_cids(),
                               [&](std::uint32_t ai, std::uint32_t bi, std::uint64_t mask) {
                                 return (a[ai] & b[bi] & mask) != 0;
                               });
}

std::uint32_t Cmask::weight() const {
  std::uint32_t n = 0;
  for (std::uint64_t w : used_words()) n += static_cast<std::uint32_t>(std::popcount(w));
  return n;
}

std::optional<std::uint32_t> Cmask::first_set() const {
  return next_set(base());
}

std::optional<std::uint32_t> Cmask::next_set(std::uint32_t cid) const {
  cid = std::max(cid, base());
  if (cid >= end()) return std::nullopt;
  const std::size_t last = used_word_count() - 1;
  std::size_t wi = cid / 64 - base() / 64;
  std::uint64_t word = bits()[wi] & genmask(63, cid & 63);
  while (word == 0) {
    if (++wi > last) return std::nullopt;
    word = bits()[wi];
  }
  const std::uint32_t found =
      static_cast<std::uint32_t>((base() / 64 + wi) * 64 + std::countr_zero(word));
  if (found >= end()) return std::nullopt;
  return found;
}

std::optional<std::uint32_t> Cmask::next_set_wrap(std::uint32_t start) const {
  if (auto found = next_set(start); found || start <= base()) return found;
  if (auto found = first_set(); found && *found < start) return found;
  return std::nullopt;
}

Result<CmaskBuffer> CmaskBuffer::create(std::uint32_t base, std::uint32_t nr_cids,
                                        std::uint32_t alloc_cids) {
  if (auto ok = check_window(base, nr_cids); !ok) return tl::unexpected(ok.error());
  std::vector<std::uint64_t> words(cmask_bytes(std::max(alloc_cids, nr_cids)) / 8);
  auto mask = Cmask::init(std::as_writable_bytes(std::span(words)), base, nr_cids, alloc_cids);
  if (!mask) return tl::unexpected(mask.error());
  return CmaskBuffer(std::move(words), *mask);
}

}  // namespace scxkit
