#include "scxkit/cpu_set.hpp"

#include <gtest/gtest.h>

namespace scxkit {
namespace {

TEST(CpuSet, ReadsAndWritesTheKernelListForm) {
  auto s = CpuSet::parse(" 0-2,5,7-8\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->to_string(), "0-2,5,7-8");
  EXPECT_EQ(s->count(), 6u);
  EXPECT_TRUE(CpuSet::of({1, 2}).subset_of(*s));
  EXPECT_EQ((*s & CpuSet::of({2, 3, 5})).to_string(), "2,5");
  EXPECT_EQ(s->minus(CpuSet::of({0, 1, 2})).to_string(), "5,7-8");
  EXPECT_TRUE(CpuSet::parse("")->empty());
  EXPECT_FALSE(CpuSet::parse("3-1"));
  EXPECT_FALSE(CpuSet::parse("a"));
  EXPECT_FALSE(CpuSet::parse("999"));
  const std::uint64_t words[2] = {0b101, 1};
  EXPECT_EQ(CpuSet::from_words(words, 2).to_string(), "0,2,64");
  EXPECT_EQ(CpuSet::from_words(words, 2).word(1), 1u);
}

}  // namespace
}  // namespace scxkit
