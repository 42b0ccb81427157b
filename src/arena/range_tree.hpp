// The arena's set of free page ranges, kept like the kernel's range_tree: a
// balanced search tree of disjoint, non-adjacent extents [start, start+len).
//
// The tree lives in memory shared by every process that opened the arena, so
// nodes link by 32-bit index into a caller-provided array instead of by
// pointer. It is a treap ordered by start and augmented with the longest
// extent in each subtree, which makes first-fit search O(log n). The caller
// serializes all calls (the arena lock).
#pragma once

#include <cstdint>
#include <optional>

namespace scxkit::internal {

class RangeTree {
 public:
  struct Node {
    std::uint32_t start, len;
    std::uint32_t left, right;  // 0 is "none"; node 0 is never used
    std::uint32_t max_len;      // longest extent in this subtree
    std::uint32_t priority;
  };
  struct Header {
    std::uint32_t root;
    std::uint32_t free_head;    // recycled nodes, linked through Node::right
    std::uint32_t next_unused;  // nodes [next_unused, capacity) were never used
    std::uint32_t capacity;
    std::uint64_t free_pages;
  };

  // Nodes needed for a domain of `pages` pages: disjoint non-adjacent extents
  // number at most ceil(pages/2), plus one for a split in flight and node 0.
  static constexpr std::uint32_t nodes_needed(std::uint32_t pages) { return pages / 2 + 3; }

  RangeTree(Header* header, Node* nodes) : h_(header), n_(nodes) {}

  // Starts empty: nothing is free.
  void reset(std::uint32_t capacity);

  // Lowest start of a free extent of at least `len` pages.
  std::optional<std::uint32_t> find_first_fit(std::uint32_t len) const;
  // True when every page of [start, start+len) is free.
  bool is_set(std::uint32_t start, std::uint32_t len) const;
  // Marks [start, start+len) free, merging with neighbours; pages already free stay free.
  void set(std::uint32_t start, std::uint32_t len);
  // Marks [start, start+len) not free; pages already not free stay so.
  void clear(std::uint32_t start, std::uint32_t len);

  std::uint64_t free_pages() const { return h_->free_pages; }
  std::uint32_t extent_count() const;

  // Calls f(start, len) for each free extent in ascending order.
  template <class F>
  void for_each(F&& f) const {
    walk(h_->root, f);
  }

 private:
  template <class F>
  void walk(std::uint32_t t, F& f) const {
    // Iterative in-order walk on the right spine keeps recursion to tree height.
    while (t != 0) {
      walk(n_[t].left, f);
      f(n_[t].start, n_[t].len);
      t = n_[t].right;
    }
  }

  std::uint32_t new_node(std::uint32_t start, std::uint32_t len);
  void free_subtree(std::uint32_t t);
  void update(std::uint32_t t);
  // Splits t into l (start < key) and r (start >= key).
  void split(std::uint32_t t, std::uint32_t key, std::uint32_t& l, std::uint32_t& r);
  std::uint32_t merge(std::uint32_t a, std::uint32_t b);
  std::uint32_t rightmost(std::uint32_t t) const;
  std::uint64_t end_of(std::uint32_t t) const { return std::uint64_t{n_[t].start} + n_[t].len; }

  Header* h_;
  Node* n_;
};

}  // namespace scxkit::internal
