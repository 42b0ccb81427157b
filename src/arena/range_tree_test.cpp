#include "arena/range_tree.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

namespace scxkit::internal {
namespace {

constexpr std::uint32_t kPages = 512;

struct Tree {
  explicit Tree(std::uint32_t pages)
      : nodes(RangeTree::nodes_needed(pages)), tree(&header, nodes.data()) {
    tree.reset(RangeTree::nodes_needed(pages));
  }
  RangeTree::Header header{};
  std::vector<RangeTree::Node> nodes;
  RangeTree tree;
};

// The model: kernel/bpf/range_tree.c step by step, over a plain list —
// extents [start, last] with the order in which the kernel (re)inserted them.
class KernelModel {
 public:
  struct Extent {
    std::uint32_t start, last;
    std::uint64_t inserted;
  };

  std::optional<std::uint32_t> find(std::uint32_t len) const {
    const Extent* best = nullptr;
    for (const Extent& e : extents_) {
      const std::uint32_t size = e.last - e.start + 1;
      if (size < len) continue;
      const std::uint32_t best_size = best ? best->last - best->start + 1 : 0;
      if (!best || size < best_size || (size == best_size && e.inserted > best->inserted)) {
        best = &e;
      }
    }
    if (!best) return std::nullopt;
    return best->start;
  }
  void clear(std::uint32_t start, std::uint32_t len) {
    const std::uint32_t last = start + len - 1;
    while (Extent* rn = iter_first(start, last)) {
      if (rn->start < start && rn->last > last) {
        const std::uint32_t old_last = rn->last;
        rn->last = start - 1;
        reinsert(*rn);
        extents_.push_back({last + 1, old_last, 0});
        reinsert(extents_.back());
      } else if (rn->start < start) {
        rn->last = start - 1;
        reinsert(*rn);
      } else if (rn->last > last) {
        rn->start = last + 1;
        reinsert(*rn);
        break;
      } else {
        extents_.erase(extents_.begin() + (rn - extents_.data()));
      }
    }
  }
  void set(std::uint32_t start, std::uint32_t len) {
    const std::uint32_t last = start + len - 1;
    if (Extent* in = iter_first(start, last); in && in->start <= start && in->last >= last) return;
    clear(start, len);
    Extent* left = start > 0 ? iter_first(start - 1, start - 1) : nullptr;
    Extent* right = iter_first(last + 1, last + 1);
    if (left && right) {
      left->last = right->last;
      reinsert(*left);
      extents_.erase(extents_.begin() + (right - extents_.data()));
    } else if (left) {
      left->last = last;
      reinsert(*left);
    } else if (right) {
      right->start = start;
      reinsert(*right);
    } else {
      extents_.push_back({start, last, 0});
      reinsert(extents_.back());
    }
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> extents() const {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    for (const Extent& e : extents_) out.emplace_back(e.start, e.last - e.start + 1);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  // The extent with the lowest start that overlaps [start, last].
  Extent* iter_first(std::uint32_t start, std::uint32_t last) {
    Extent* best = nullptr;
    for (Extent& e : extents_) {
      if (e.start <= last && e.last >= start && (!best || e.start < best->start)) best = &e;
    }
    return best;
  }
  void reinsert(Extent& e) { e.inserted = ++clock_; }

  std::vector<Extent> extents_;
  std::uint64_t clock_ = 0;
};

TEST(RangeTree, StartsEmptyThenHoldsWhatIsSet) {
  Tree t(kPages);
  EXPECT_FALSE(t.tree.find(1));
  t.tree.set(0, kPages);
  EXPECT_EQ(t.tree.free_pages(), kPages);
  EXPECT_EQ(t.tree.find(kPages), 0u);
  EXPECT_FALSE(t.tree.find(kPages + 1));
}

TEST(RangeTree, SplitsAndMergesNeighbours) {
  Tree t(kPages);
  t.tree.set(0, 100);
  t.tree.clear(10, 5);
  EXPECT_EQ(t.tree.extent_count(), 2u);
  EXPECT_TRUE(t.tree.is_set(0, 10));
  EXPECT_FALSE(t.tree.is_set(9, 2));
  EXPECT_EQ(t.tree.find(11), 15u);
  t.tree.set(10, 5);
  EXPECT_EQ(t.tree.extent_count(), 1u);
  EXPECT_EQ(t.tree.free_pages(), 100u);
}

TEST(RangeTree, AlternatingPagesNeedAtMostTheNodesItReserves) {
  Tree t(kPages);
  for (std::uint32_t p = 0; p < kPages; p += 2) t.tree.set(p, 1);
  EXPECT_EQ(t.tree.extent_count(), kPages / 2);
  for (std::uint32_t p = 1; p < kPages; p += 2) t.tree.set(p, 1);
  EXPECT_EQ(t.tree.extent_count(), 1u);
}

RC_GTEST_PROP(RangeTree, ChoosesExactlyAsTheKernelsRangeTree, ()) {
  Tree t(kPages);
  KernelModel model;
  t.tree.set(0, kPages);
  model.set(0, kPages);
  const auto ops = *rc::gen::container<std::vector<std::tuple<int, std::uint32_t, std::uint32_t>>>(
      rc::gen::tuple(rc::gen::inRange(0, 4), rc::gen::inRange<std::uint32_t>(0, kPages),
                     rc::gen::inRange<std::uint32_t>(1, 40)));
  for (auto [op, start, len] : ops) {
    len = std::min(len, kPages - start);
    if (len == 0) continue;
    if (op == 0) {
      t.tree.set(start, len);
      model.set(start, len);
    } else if (op == 1) {
      t.tree.clear(start, len);
      model.clear(start, len);
    } else {
      // An allocation without an address: find, then clear what was found.
      const auto want = model.find(len);
      RC_ASSERT(t.tree.find(len) == want);
      if (op == 3 && want) {
        t.tree.clear(*want, len);
        model.clear(*want, len);
      }
    }
    std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
    t.tree.for_each([&](std::uint32_t s, std::uint32_t l) { got.emplace_back(s, l); });
    RC_ASSERT(got == model.extents());
    std::uint64_t free_count = 0;
    for (auto [s, l] : got) free_count += l;
    RC_ASSERT(t.tree.free_pages() == free_count);
  }
}

TEST(RangeTree, PicksTheSmallestFitThenTheMostRecentlyChanged) {
  Tree t(kPages);
  t.tree.set(0, 8);
  t.tree.set(100, 8);
  t.tree.set(200, 20);
  EXPECT_EQ(t.tree.find(4), 100u);  // two 8-page extents; [100, 108) came last
  EXPECT_EQ(t.tree.find(9), 200u);
  t.tree.clear(2, 1);             // [0, 2) then [3, 8) re-inserted
  EXPECT_EQ(t.tree.find(5), 3u);  // 5 fits [3, 8) exactly
  EXPECT_EQ(t.tree.find(2), 0u);  // [0, 2) is the smallest
  t.tree.set(0, 8);               // merges back into the newest extent
  EXPECT_EQ(t.tree.find(8), 0u);
  t.tree.set(0, 8);  // entirely free already: not re-inserted
  EXPECT_EQ(t.tree.find(8), 0u);
}

}  // namespace
}  // namespace scxkit::internal
