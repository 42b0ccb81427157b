#include "runner/worker_results.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace scxkit::internal {
namespace {

TEST(LatencyHistogram, BucketsAreAtMostAQuarterWideAndCoverEveryValue) {
  for (std::uint64_t v : {0ull, 3ull, 4ull, 5ull, 7ull, 1000ull, 123456ull, 999999999ull}) {
    const auto b = LatencyHistogram::bucket_of(v);
    EXPECT_LE(LatencyHistogram::bucket_low(b), v);
    EXPECT_GE(LatencyHistogram::bucket_high(b), v);
    const auto width = LatencyHistogram::bucket_high(b) - LatencyHistogram::bucket_low(b) + 1;
    EXPECT_LE(width * 4, std::max<std::uint64_t>(v, 4) + 4) << v;
  }
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, SummaryGivesUpperBoundPercentiles) {
  auto h = std::make_unique<LatencyHistogram>();
  for (auto& c : h->counts) c.store(0);
  for (int i = 0; i < 98; ++i) h->record(10'000);  // 10 us
  h->record(1'000'000);                            // 1 ms
  h->record(50'000'000);                           // 50 ms
  const LatencySummary s = summarize(*h);
  EXPECT_EQ(s.count, 100u);
  EXPECT_GE(s.p50_us, 10);
  EXPECT_LE(s.p50_us, 12.5);
  EXPECT_GE(s.p99_us, 1000);
  EXPECT_LE(s.p99_us, 1250);
  EXPECT_GE(s.max_us, 50000);
  EXPECT_EQ(s.buckets.size(), 3u);
  EXPECT_EQ(summarize(LatencyHistogram{}).count, 0u);
}

}  // namespace
}  // namespace scxkit::internal
