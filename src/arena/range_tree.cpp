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
  *h_ = Header{};
  h_->next_unused = 1;
  h_->capacity = capacity;
}

std::uint32_t RangeTree::new_node(std::uint32_t start, std::uint32_t len) {
  std::uint32_t i = h_->free_head;
  if (i != 0) {
    h_->free_head = n_[i].right;
  } else {
    // nodes_needed() bounds the extents, so the array cannot run out.
    i = h_->next_unused++;
  }
  n_[i] = Node{start, len, 0, 0, 0, 0, mix(i), 0, 0};
  size_insert(i);
  return i;
}

void RangeTree::free_subtree(std::uint32_t t) {
  while (t != 0) {
    free_subtree(n_[t].left);
    std::uint32_t next = n_[t].right;
    size_erase(t);
    h_->free_pages -= n_[t].len;
    n_[t].right = h_->free_head;
    h_->free_head = t;
    t = next;
  }
}

template <std::uint32_t RangeTree::Node::*Left, std::uint32_t RangeTree::Node::*Right, class Pred>
void RangeTree::split_by(std::uint32_t t, Pred goes_left, std::uint32_t& l, std::uint32_t& r) {
  if (t == 0) {
    l = r = 0;
    return;
  }
  if (goes_left(t)) {
    std::uint32_t rl = 0;
    split_by<Left, Right>(n_[t].*Right, goes_left, rl, r);
    n_[t].*Right = rl;
    l = t;
  } else {
    std::uint32_t lr = 0;
    split_by<Left, Right>(n_[t].*Left, goes_left, l, lr);
    n_[t].*Left = lr;
    r = t;
  }
}

template <std::uint32_t RangeTree::Node::*Left, std::uint32_t RangeTree::Node::*Right>
std::uint32_t RangeTree::merge_by(std::uint32_t a, std::uint32_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  if (n_[a].priority > n_[b].priority) {
    n_[a].*Right = merge_by<Left, Right>(n_[a].*Right, b);
    return a;
  }
  n_[b].*Left = merge_by<Left, Right>(a, n_[b].*Left);
  return b;
}

void RangeTree::split(std::uint32_t t, std::uint32_t key, std::uint32_t& l, std::uint32_t& r) {
  split_by<&Node::left, &Node::right>(
      t, [&](std::uint32_t x) { return n_[x].start < key; }, l, r);
}

std::uint32_t RangeTree::merge(std::uint32_t a, std::uint32_t b) {
  return merge_by<&Node::left, &Node::right>(a, b);
}

std::uint32_t RangeTree::rightmost(std::uint32_t t) const {
  while (t != 0 && n_[t].right != 0) t = n_[t].right;
  return t;
}

bool RangeTree::size_before(std::uint32_t a, std::uint32_t b) const {
  // Smaller extents first; among equal sizes the newest first, which is
  // where the kernel's search for "the last that fits" ends.
  if (n_[a].len != n_[b].len) return n_[a].len < n_[b].len;
  return n_[a].stamp > n_[b].stamp;
}

void RangeTree::size_insert(std::uint32_t node) {
  constexpr auto kL = &Node::sleft, kR = &Node::sright;
  n_[node].stamp = ++h_->next_stamp;
  n_[node].sleft = n_[node].sright = 0;
  const auto before = [&](std::uint32_t x) { return size_before(x, node); };
  std::uint32_t l = 0, r = 0;
  split_by<kL, kR>(h_->size_root, before, l, r);
  h_->size_root = merge_by<kL, kR>(merge_by<kL, kR>(l, node), r);
}

void RangeTree::size_erase(std::uint32_t node) {
  constexpr auto kL = &Node::sleft, kR = &Node::sright;
  const auto before = [&](std::uint32_t x) { return size_before(x, node); };
  const auto itself = [&](std::uint32_t x) { return x == node; };
  std::uint32_t l = 0, rest = 0, self = 0, r = 0;
  split_by<kL, kR>(h_->size_root, before, l, rest);
  split_by<kL, kR>(rest, itself, self, r);
  h_->size_root = merge_by<kL, kR>(l, r);
}

std::optional<std::uint32_t> RangeTree::find(std::uint32_t len) const {
  // The first extent in size order that holds `len` pages.
  std::uint32_t t = h_->size_root, best = 0;
  while (t != 0) {
    if (n_[t].len >= len) {
      best = t;
      t = n_[t].sleft;
    } else {
      t = n_[t].sright;
    }
  }
  if (best == 0) return std::nullopt;
  return n_[best].start;
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
  if (len == 0 || is_set(start, len)) return;  // the kernel returns early: no re-insertion
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
  // Whatever the kernel touched on the way ends up in this one extent, which
  // it inserts last: one fresh stamp.
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
  std::uint64_t tail_end = 0;
  if (std::uint32_t last = rightmost(left); last != 0 && end_of(last) > start) {
    // Cut on the left: the kernel trims it and re-inserts it first.
    tail_end = end_of(last);
    h_->free_pages -= tail_end - start;
    size_erase(last);  // by its old size
    n_[last].len = start - n_[last].start;
    size_insert(last);
  }
  std::uint32_t mid = 0, right = 0;
  split(rest, static_cast<std::uint32_t>(std::min<std::uint64_t>(e, UINT32_MAX)), mid, right);
  if (mid != 0) {
    tail_end = std::max(tail_end, end_of(rightmost(mid)));
    free_subtree(mid);
  }
  if (tail_end > e) {
    // What is left on the right comes second.
    tail = new_node(static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(tail_end - e));
    h_->free_pages += tail_end - e;
  }
  h_->root = merge(merge(left, tail), right);
}

std::uint32_t RangeTree::extent_count() const {
  std::uint32_t count = 0;
  for_each([&](std::uint32_t, std::uint32_t) { ++count; });
  return count;
}

}  // namespace scxkit::internal
