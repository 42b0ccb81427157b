#include "arena/range_tree.hpp"

#include <algorithm>

namespace scxkit::internal {

namespace {
// Treap priorities only need to look random; a hash of the node index keeps
// them deterministic and stateless (no RNG in shared memory).
std::uint32_t mix(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}
}  // namespace

void RangeTree::reset(std::uint32_t capacity) {
  *h_ = Header{0, 0, 1, capacity, 0};
}

std::uint32_t RangeTree::new_node(std::uint32_t start, std::uint32_t len) {
  std::uint32_t i = h_->free_head;
  if (i != 0) {
    h_->free_head = n_[i].right;
  } else {
    // nodes_needed() bounds the extents, so the array cannot run out.
    i = h_->next_unused++;
  }
  n_[i] = Node{start, len, 0, 0, len, mix(i)};
  return i;
}

void RangeTree::free_subtree(std::uint32_t t) {
  while (t != 0) {
    free_subtree(n_[t].left);
    std::uint32_t next = n_[t].right;
    h_->free_pages -= n_[t].len;
    n_[t].right = h_->free_head;
    h_->free_head = t;
    t = next;
  }
}

void RangeTree::update(std::uint32_t t) {
  Node& n = n_[t];
  n.max_len = n.len;
  if (n.left != 0) n.max_len = std::max(n.max_len, n_[n.left].max_len);
  if (n.right != 0) n.max_len = std::max(n.max_len, n_[n.right].max_len);
}

void RangeTree::split(std::uint32_t t, std::uint32_t key, std::uint32_t& l, std::uint32_t& r) {
  if (t == 0) {
    l = r = 0;
    return;
  }
  if (n_[t].start < key) {
    std::uint32_t rl = 0;
    split(n_[t].right, key, rl, r);
    n_[t].right = rl;
    l = t;
  } else {
    std::uint32_t lr = 0;
    split(n_[t].left, key, l, lr);
    n_[t].left = lr;
    r = t;
  }
  update(t);
}

std::uint32_t RangeTree::merge(std::uint32_t a, std::uint32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  if (n_[a].priority > n_[b].priority) {
    n_[a].right = merge(n_[a].right, b);
    update(a);
    return a;
  }
  n_[b].left = merge(a, n_[b].left);
  update(b);
  return b;
}

std::uint32_t RangeTree::rightmost(std::uint32_t t) const {
  while (t != 0 && n_[t].right != 0) t = n_[t].right;
  return t;
}

std::optional<std::uint32_t> RangeTree::find_first_fit(std::uint32_t len) const {
  std::uint32_t t = h_->root;
  if (t == 0 || n_[t].max_len < len) return std::nullopt;
  for (;;) {
    const Node& n = n_[t];
    if (n.left != 0 && n_[n.left].max_len >= len) {
      t = n.left;
    } else if (n.len >= len) {
      return n.start;
    } else {
      t = n.right;  // max_len guarantees a fit on this side
    }
  }
}

bool RangeTree::is_set(std::uint32_t start, std::uint32_t len) const {
  // The extent with the greatest start <= `start` is the only one that can hold it.
  std::uint32_t t = h_->root, best = 0;
  while (t != 0) {
    if (n_[t].start <= start) {
      best = t;
      t = n_[t].right;
    } else {
      t = n_[t].left;
    }
  }
  return best != 0 && std::uint64_t{start} + len <= end_of(best);
}

void RangeTree::set(std::uint32_t start, std::uint32_t len) {
  if (len == 0) return;
  std::uint64_t s = start, e = std::uint64_t{start} + len;
  std::uint32_t left = 0, rest = 0;
  split(h_->root, start, left, rest);
  // An extent before `start` that reaches it is absorbed.
  if (std::uint32_t last = rightmost(left); last != 0 && end_of(last) >= s) {
    s = n_[last].start;
    e = std::max(e, end_of(last));
    std::uint32_t single = 0;
    split(left, n_[last].start, left, single);
    free_subtree(single);
  }
  // Extents starting inside or right at the end of [s, e] are absorbed too;
  // the tree's extents never touch, so nothing after them can reach e.
  std::uint32_t mid = 0, right = 0;
  split(rest, static_cast<std::uint32_t>(std::min<std::uint64_t>(e + 1, UINT32_MAX)), mid, right);
  if (mid != 0) e = std::max(e, end_of(rightmost(mid)));
  free_subtree(mid);
  std::uint32_t node = new_node(static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(e - s));
  h_->free_pages += e - s;
  h_->root = merge(merge(left, node), right);
}

void RangeTree::clear(std::uint32_t start, std::uint32_t len) {
  if (len == 0) return;
  const std::uint64_t e = std::uint64_t{start} + len;
  std::uint32_t left = 0, rest = 0;
  split(h_->root, start, left, rest);
  std::uint32_t tail = 0;  // the part of a cut extent that lies past e
  if (std::uint32_t last = rightmost(left); last != 0 && end_of(last) > start) {
    const std::uint64_t old_end = end_of(last);
    std::uint32_t single = 0;
    split(left, n_[last].start, left, single);
    h_->free_pages -= old_end - start;
    n_[single].len = start - n_[single].start;
    update(single);
    left = merge(left, single);
    if (old_end > e) {
      tail = new_node(static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(old_end - e));
      h_->free_pages += old_end - e;
    }
  }
  std::uint32_t mid = 0, right = 0;
  split(rest, static_cast<std::uint32_t>(std::min<std::uint64_t>(e, UINT32_MAX)), mid, right);
  if (mid != 0) {
    const std::uint64_t mid_end = end_of(rightmost(mid));
    if (mid_end > e) {
      tail = new_node(static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(mid_end - e));
      h_->free_pages += mid_end - e;
    }
    free_subtree(mid);
  }
  h_->root = merge(merge(left, tail), right);
}

std::uint32_t RangeTree::extent_count() const {
  std::uint32_t count = 0;
  for_each([&](std::uint32_t, std::uint32_t) { ++count; });
  return count;
}

}  // namespace scxkit::internal
