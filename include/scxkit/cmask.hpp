// cmask: the sched_ext cid mask, over caller-provided bytes.
//
// A Cmask is a view of a struct scx_cmask (include/scxkit/bpf/cid_types.h):
// a 16-byte header { u32 base; u32 nr_cids; u32 alloc_words; } and alloc_words
// u64 words of bits on the global 64-cid grid, covering the cid window
// [base, base + nr_cids). The bytes can live anywhere (a std::vector, shared
// memory, an arena page that BPF code reads through an __arena pointer); the
// view only needs them 8-byte aligned and alive. The head bits below base and
// the tail bits past the window in its last word are padding and stay zero.
//
// Semantics follow the kernel's scx_cmask_*():
// - single-cid calls on a cid outside the window are errors here (the kernel
//   ignores them); nothing changes on error;
// - and/or/andnot/copy change only the destination bits inside the overlap of
//   the two windows; bits outside it keep their values. Disjoint non-empty
//   windows are an error (the call could not change anything);
// - subset/equal/intersects compare the sets of cids, whatever the windows:
//   a set cid of `a` outside `b`'s window is not in `b`.
#pragma once

#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit {

class CidTable;

// SCX_CMASK_NR_WORDS(): words that hold nr_cids cids at any base alignment.
constexpr std::uint32_t cmask_nr_words(std::uint64_t nr_cids) {
  return static_cast<std::uint32_t>((nr_cids + 63) / 64 + 1);
}
inline constexpr std::size_t kCmaskHeaderBytes = 16;
// Bytes of a cmask that can hold alloc_cids cids.
constexpr std::size_t cmask_bytes(std::uint32_t alloc_cids) {
  return kCmaskHeaderBytes + std::size_t{cmask_nr_words(alloc_cids)} * 8;
}

// struct scx_cmask's header as C++ sees it; bits[] starts right after.
struct CmaskHeader {
  std::uint32_t base;
  std::uint32_t nr_cids;
  std::uint32_t alloc_words;
  std::uint32_t padding;  // alignment of bits[]; not part of the mask
};
static_assert(sizeof(CmaskHeader) == kCmaskHeaderBytes);

class Cmask {
 public:
  // Writes a new cmask over `storage`: window [base, base + nr_cids), room for
  // alloc_cids cids (>= nr_cids), every storage word zeroed. Errors: storage
  // misaligned or smaller than cmask_bytes(alloc_cids); the window passes cid
  // 2^32 - 1.
  static Result<Cmask> init(std::span<std::byte> storage, std::uint32_t base, std::uint32_t nr_cids,
                            std::uint32_t alloc_cids);
  static Result<Cmask> init(std::span<std::byte> storage, std::uint32_t base,
                            std::uint32_t nr_cids) {
    return init(storage, base, nr_cids, nr_cids);
  }
  // Views a cmask someone else wrote (the kernel, BPF code, another process),
  // after checking its header against the storage it sits in.
  static Result<Cmask> attach(std::span<std::byte> storage);

  std::uint32_t base() const { return header_->base; }
  std::uint32_t nr_cids() const { return header_->nr_cids; }
  std::uint32_t end() const { return header_->base + header_->nr_cids; }  // one past the window
  std::uint32_t alloc_words() const { return header_->alloc_words; }
  bool empty_window() const { return header_->nr_cids == 0; }
  bool contains(std::uint32_t cid) const { return cid >= base() && cid < end(); }
  // The struct scx_cmask itself: what BPF code and the kernel see.
  std::byte* data() const { return reinterpret_cast<std::byte*>(header_); }
  std::size_t size_bytes() const { return kCmaskHeaderBytes + std::size_t{alloc_words()} * 8; }
  // The words the window spans (bits[0] onwards).
  std::span<const std::uint64_t> used_words() const { return {bits(), used_word_count()}; }

  // Moves the window within the storage. Like the kernel, only the first and
  // last word of the new window are zeroed (padding stays zero); the cids in
  // between are unspecified until written (zero() or copy_from()).
  // Error: the storage cannot hold nr_cids cids, or the window passes 2^32 - 1.
  Result<void> reframe(std::uint32_t base, std::uint32_t nr_cids);

  // Single-cid operations; error out_of_range outside the window.
  Result<bool> test(std::uint32_t cid) const;
  Result<void> set(std::uint32_t cid);
  Result<void> clear(std::uint32_t cid);
  Result<bool> test_and_set(std::uint32_t cid);    // returns the previous value
  Result<bool> test_and_clear(std::uint32_t cid);  // returns the previous value
  // The same, as one atomic read-modify-write of the cid's word, safe against
  // concurrent writers of other bits in that word (other threads, processes,
  // BPF programs using the CAS helpers of cmask.bpf.h).
  Result<void> atomic_set(std::uint32_t cid);
  Result<void> atomic_clear(std::uint32_t cid);
  Result<bool> atomic_test_and_set(std::uint32_t cid);
  Result<bool> atomic_test_and_clear(std::uint32_t cid);

  void zero();  // clears every cid of the window

  // this OP= src over the overlap of the windows (see the top of the file).
  Result<void> and_with(const Cmask& src);
  Result<void> or_with(const Cmask& src);
  Result<void> andnot_with(const Cmask& src);
  Result<void> copy_from(const Cmask& src);

  bool equal(const Cmask& other) const;       // same set of cids
  bool subset_of(const Cmask& super) const;   // every set cid is set in super
  bool intersects(const Cmask& other) const;  // some cid set in both
  std::uint32_t weight() const;               // number of set cids

  std::optional<std::uint32_t> first_set() const;
  // The lowest set cid >= cid (cids below the window start at base()).
  std::optional<std::uint32_t> next_set(std::uint32_t cid) const;
  // The lowest set cid >= start, else the lowest set cid < start: round-robin
  // scanning with start = last + 1. Empty mask: nullopt.
  std::optional<std::uint32_t> next_set_wrap(std::uint32_t start) const;

  // Set cids in ascending order: for (std::uint32_t cid : mask.cids()) ...
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::uint32_t;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    std::uint32_t operator*() const { return *cid_; }
    Iterator& operator++() {
      cid_ = mask_->next_set(*cid_ + 1);
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& o) const { return cid_ == o.cid_; }

   private:
    friend class Cmask;
    Iterator(const Cmask* mask, std::optional<std::uint32_t> cid) : mask_(mask), cid_(cid) {}
    const Cmask* mask_ = nullptr;
    std::optional<std::uint32_t> cid_;
  };
  struct CidRange {
    Iterator first, last;
    Iterator begin() const { return first; }
    Iterator end() const { return last; }
  };
  CidRange cids() const { return {Iterator(this, first_set()), Iterator(this, std::nullopt)}; }

  // CPU sets, through a cid table. assign_* replace the window's contents and
  // fail, changing nothing, on a CPU that is not possible or whose cid lies
  // outside the window. to_cpu_set fails on a cid the table does not know or a
  // CPU beyond CPU_SETSIZE.
  Result<void> assign_cpu_set(const cpu_set_t& cpus, const CidTable& table);
  Result<cpu_set_t> to_cpu_set(const CidTable& table) const;
  Result<void> assign_cpulist(std::string_view cpulist, const CidTable& table);
  Result<std::string> to_cpulist(const CidTable& table) const;
  // The set cids themselves in list form ("0-3,8").
  Result<void> assign_cidlist(std::string_view cidlist);
  std::string to_cidlist() const;

 private:
  explicit Cmask(CmaskHeader* header) : header_(header) {}
  std::uint64_t* bits() const { return reinterpret_cast<std::uint64_t*>(header_ + 1); }
  std::size_t used_word_count() const;
  std::uint64_t* word_of(std::uint32_t cid) const { return bits() + (cid / 64 - base() / 64); }
  Result<void> check_cid(std::uint32_t cid) const;
  // Sets or clears one cid; returns its previous value.
  Result<bool> update(std::uint32_t cid, bool set, bool atomic);
  void assign_cids(const std::vector<std::uint32_t>& cids);  // zero(), then set; cids checked

  CmaskHeader* header_;
};

// A cmask in memory it owns (heap), for C++-only use and tests.
class CmaskBuffer {
 public:
  static Result<CmaskBuffer> create(std::uint32_t base, std::uint32_t nr_cids,
                                    std::uint32_t alloc_cids);
  static Result<CmaskBuffer> create(std::uint32_t base, std::uint32_t nr_cids) {
    return create(base, nr_cids, nr_cids);
  }
  CmaskBuffer(CmaskBuffer&&) noexcept = default;
  CmaskBuffer& operator=(CmaskBuffer&&) noexcept = default;
  CmaskBuffer(const CmaskBuffer&) = delete;
  CmaskBuffer& operator=(const CmaskBuffer&) = delete;

  Cmask& mask() { return mask_; }
  const Cmask& mask() const { return mask_; }
  Cmask& operator*() { return mask_; }
  const Cmask& operator*() const { return mask_; }
  Cmask* operator->() { return &mask_; }
  const Cmask* operator->() const { return &mask_; }

 private:
  CmaskBuffer(std::vector<std::uint64_t> words, Cmask mask)
      : words_(std::move(words)), mask_(mask) {}
  std::vector<std::uint64_t> words_;  // header and bits; the vector's heap block never moves
  Cmask mask_;
};

}  // namespace scxkit
