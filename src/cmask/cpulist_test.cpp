#include "scxkit/cpulist.hpp"

#include <gtest/gtest.h>

namespace scxkit {
namespace {

using List = std::vector<std::uint32_t>;

TEST(Cpulist, ParsesNumbersRangesAndSysfsNewlines) {
  EXPECT_EQ(*parse_cpulist("0-3,8\n", 100), (List{0, 1, 2, 3, 8}));
  EXPECT_EQ(*parse_cpulist("5", 100), (List{5}));
  EXPECT_EQ(*parse_cpulist(" 1 , 4-5 ", 100), (List{1, 4, 5}));
  EXPECT_EQ(*parse_cpulist("", 100), List{});
  EXPECT_EQ(*parse_cpulist("\n", 100), List{});
}

TEST(Cpulist, SortsAndMergesOverlaps) {
  EXPECT_EQ(*parse_cpulist("8,2-4,3,0", 100), (List{0, 2, 3, 4, 8}));
}

TEST(Cpulist, RejectsMalformedListsWithTheReason) {
  for (const char* bad : {"1,,2", "1,", ",1", "a", "1-", "-3", "1-2-3", "0x1", "3-1"}) {
    auto r = parse_cpulist(bad, 100);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(Cpulist, RejectsNumbersAtOrPastTheLimit) {
  auto r = parse_cpulist("0-4", 4);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::out_of_range);
  EXPECT_NE(r.error().message.find("limit is 3"), std::string::npos) << r.error().message;
  EXPECT_TRUE(parse_cpulist("0-3", 4));
}

TEST(Cpulist, FormatsRunsLikeTheKernel) {
  EXPECT_EQ(format_cpulist(List{}), "");
  EXPECT_EQ(format_cpulist(List{7}), "7");
  EXPECT_EQ(format_cpulist(List{0, 1, 2, 3, 8}), "0-3,8");
  EXPECT_EQ(format_cpulist(List{0, 2, 4, 5}), "0,2,4-5");
}

TEST(Cpulist, FormatThenParseGivesTheSameSet) {
  const List set{1, 2, 3, 10, 12, 13, 14, 100};
  EXPECT_EQ(*parse_cpulist(format_cpulist(set), 101), set);
}

}  // namespace
}  // namespace scxkit
