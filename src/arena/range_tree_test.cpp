#include "arena/range_tree.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

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

// The model: one bool per page, true when free.
std::vector<std::pair<std::uint32_t, std::uint32_t>> extents_of(const std::vector<bool>& free) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
  for (std::uint32_t i = 0; i < free.size();) {
    if (!free[i]) {
      ++i;
      continue;
    }
    std::uint32_t s = i;
    while (i < free.size() && free[i]) ++i;
    out.emplace_back(s, i - s);
  }
  return out;
}

TEST(RangeTree, StartsEmptyThenHoldsWhatIsSet) {
  Tree t(kPages);
  EXPECT_FALSE(t.tree.find_first_fit(1));
  t.tree.set(0, kPages);
  EXPECT_EQ(t.tree.free_pages(), kPages);
  EXPECT_EQ(t.tree.find_first_fit(kPages), 0u);
  EXPECT_FALSE(t.tree.find_first_fit(kPages + 1));
}

TEST(RangeTree, SplitsAndMergesNeighbours) {
  Tree t(kPages);
  t.tree.set(0, 100);
  t.tree.clear(10, 5);
  EXPECT_EQ(t.tree.extent_count(), 2u);
  EXPECT_TRUE(t.tree.is_set(0, 10));
  EXPECT_FALSE(t.tree.is_set(9, 2));
  EXPECT_EQ(t.tree.find_first_fit(11), 15u);
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

RC_GTEST_PROP(RangeTree, MatchesAPageBitmapModel, ()) {
  Tree t(kPages);
  std::vector<bool> model(kPages, false);
  const auto ops = *rc::gen::container<std::vector<std::tuple<int, std::uint32_t, std::uint32_t>>>(
      rc::gen::tuple(rc::gen::inRange(0, 3), rc::gen::inRange<std::uint32_t>(0, kPages),
                     rc::gen::inRange<std::uint32_t>(1, 40)));
  for (auto [op, start, len] : ops) {
    len = std::min(len, kPages - start);
    if (len == 0) continue;
    if (op == 0) {
      t.tree.set(start, len);
      for (std::uint32_t i = start; i < start + len; ++i) model[i] = true;
    } else if (op == 1) {
      t.tree.clear(start, len);
      for (std::uint32_t i = start; i < start + len; ++i) model[i] = false;
    } else {
      // First fit must be the lowest start of a long enough free run.
      std::optional<std::uint32_t> want;
      for (auto [s, l] : extents_of(model)) {
        if (l >= len) {
          want = s;
          break;
        }
      }
      RC_ASSERT(t.tree.find_first_fit(len) == want);
      bool all_free = true;
      for (std::uint32_t i = start; i < start + len; ++i) all_free = all_free && model[i];
      RC_ASSERT(t.tree.is_set(start, len) == all_free);
    }
    std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
    t.tree.for_each([&](std::uint32_t s, std::uint32_t l) { got.emplace_back(s, l); });
    RC_ASSERT(got == extents_of(model));
    std::uint64_t free_count = 0;
    for (bool b : model) free_count += b;
    RC_ASSERT(t.tree.free_pages() == free_count);
  }
}

}  // namespace
}  // namespace scxkit::internal
