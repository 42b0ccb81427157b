// The arena's set of free page ranges, kept like the kernel's range_tree
// (kernel/bpf/range_tree.c): disjoint, non-adjacent extents [start, start+len)
// indexed twice — by start, to set and clear ranges, and by size, to choose
// where an allocation without an address goes.
//
// The choice is the kernel's, page for page: range_tree_find() walks an
// rbtree ordered by size (larger first, equal sizes in insertion order) for
// the last extent that still fits, so it returns the smallest extent that
// fits and, among extents of that size, the one (re)inserted most recently.
// The kernel re-inserts an extent whenever it changes, so "most recently"
// means "changed last"; each extent carries a stamp from one counter that
// follows exactly the kernel's insertions (see set() and clear()).
//
// The tree lives in memory shared by every process that opened the arena, so
// nodes link by 32-bit index into a caller-provided array instead of by
// pointer. Both indexes are treaps over the same nodes (priority from a hash
// of the node index). The caller serializes all calls (the arena lock).
#pragma once

#include <cstdint>
#include <optional>

namespace scxkit::internal {

class RangeTree {
 public:
  struct Node {
    std::uint32_t start, len;
    std::uint32_t left, right;    // by start; 0 is "none"; node 0 is never used
    std::uint32_t sleft, sright;  // by (len ascending, stamp descending)
    std::uint32_t priority;
    std::uint32_t reserved0;
    std::uint64_t stamp;  // when the kernel would have (re)inserted this extent
  };
  struct Header {
    std::uint32_t root;
    std::uint32_t size_root;
    std::uint32_t free_head;    // recycled nodes, linked through Node::right
    std::uint32_t next_unused;  // nodes [next_unused, capacity) were never used
    std::uint32_t capacity;
    std::uint32_t reserved0;
    std::uint64_t free_pages;
    std::uint64_t next_stamp;
  };

  // Nodes needed for a domain of `pages` pages: disjoint non-adjacent extents
  // number at most ceil(pages/2), plus one for a split in flight and node 0.
  static constexpr std::uint32_t nodes_needed(std::uint32_t pages) { return pages / 2 + 3; }

  RangeTree(Header* header, Node* nodes) : h_(header), n_(nodes) {}

  // Starts empty: nothing is free.
  void reset(std::uint32_t capacity);

  // range_tree_find(): where `len` pages go — the start of the smallest free
  // extent of at least `len` pages, the most recently changed among equals.
  std::optional<std::uint32_t> find(std::uint32_t len) const;
  // True when every page of [start, start+len) is free.
  bool is_set(std::uint32_t start, std::uint32_t len) const;
  // range_tree_set(): marks [start, start+len) free, merging with neighbours.
  // Already entirely free: nothing changes (not even a stamp).
  void set(std::uint32_t start, std::uint32_t len);
  // range_tree_clear(): marks [start, start+len) not free; what is left of a
  // cut extent on the left, then on the right, counts as changed.
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

  // Treap split (nodes where goes_left holds, an in-order prefix, go to l)
  // and merge over one of the two link pairs.
  template <std::uint32_t Node::*Left, std::uint32_t Node::*Right, class Pred>
  void split_by(std::uint32_t t, Pred goes_left, std::uint32_t& l, std::uint32_t& r);
  template <std::uint32_t Node::*Left, std::uint32_t Node::*Right>
  std::uint32_t merge_by(std::uint32_t a, std::uint32_t b);

  std::uint32_t new_node(std::uint32_t start, std::uint32_t len);
  void free_subtree(std::uint32_t t);
  // Splits t into l (start < key) and r (start >= key).
  void split(std::uint32_t t, std::uint32_t key, std::uint32_t& l, std::uint32_t& r);
  std::uint32_t merge(std::uint32_t a, std::uint32_t b);
  std::uint32_t rightmost(std::uint32_t t) const;
  std::uint64_t end_of(std::uint32_t t) const { return std::uint64_t{n_[t].start} + n_[t].len; }

  // The size index.
  bool size_before(std::uint32_t a, std::uint32_t b) const;
  // A node changing size leaves the index by its old size and comes back
  // with a fresh stamp, as the kernel re-inserts it.
  void size_insert(std::uint32_t node);
  void size_erase(std::uint32_t node);

  Header* h_;
  Node* n_;
};

}  // namespace scxkit::internal
