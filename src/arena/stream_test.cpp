#include "scxkit/stream.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace scxkit {
namespace {

TEST(Stream, ReadsRecordsBackInOrder) {
  Stream s(1024);
  EXPECT_TRUE(s.write("one\n"));
  EXPECT_TRUE(s.write("two\n"));
  EXPECT_TRUE(s.write(""));
  EXPECT_EQ(s.read_all(), "one\ntwo\n");
  EXPECT_EQ(s.read_all(), "");
}

TEST(Stream, AFullStreamDropsWholeRecordsAndCountsThem) {
  Stream s(256);
  const std::string rec(60, 'x');  // 64 bytes with its header
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(s.write(rec));
  EXPECT_FALSE(s.write(rec));
  EXPECT_FALSE(s.write(std::string(300, 'y')));
  EXPECT_EQ(s.dropped(), 2u);
  EXPECT_EQ(s.read_all().size(), 4 * rec.size());
  EXPECT_TRUE(s.write(rec));  // space is back once read
}

TEST(Stream, PartialReadsStopAtRecordBoundariesAndWrapAround) {
  Stream s(256);
  std::string all;
  for (int round = 0; round < 50; ++round) {
    const std::string a = fmt::format("rec-{}-a;", round);
    const std::string b = fmt::format("rec-{}-bb;", round);
    ASSERT_TRUE(s.write(a));
    ASSERT_TRUE(s.write(b));
    char buf[16];
    const std::size_t n = s.read(buf, a.size());  // room for the first record only
    ASSERT_EQ(std::string(buf, n), a);
    all += s.read_all();
  }
  EXPECT_NE(all.find("rec-49-bb;"), std::string::npos);
}

TEST(StreamConcurrency, ConcurrentWritersNeverTearARecord) {
  Stream s(1 << 16);
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> writers;
  std::string got;
  std::atomic<int> done{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string rec = fmt::format("<{}:{}>", t, i);
        while (!s.write(rec)) std::this_thread::yield();  // full: wait for the reader
      }
      ++done;
    });
  }
  while (done < kThreads) got += s.read_all();
  for (auto& w : writers) w.join();
  got += s.read_all();
  std::set<std::string> records;
  std::vector<int> next(kThreads, 0);
  for (std::size_t i = 0; i < got.size();) {
    const std::size_t end = got.find('>', i);
    ASSERT_NE(end, std::string::npos);
    const std::string rec = got.substr(i, end + 1 - i);
    ASSERT_EQ(rec.front(), '<') << rec;
    const int t = std::stoi(rec.substr(1));
    const int n = std::stoi(rec.substr(rec.find(':') + 1));
    EXPECT_EQ(n, next[t]++) << "records of one writer come out in order";
    records.insert(rec);
    i = end + 1;
  }
  EXPECT_EQ(records.size(), std::size_t{kThreads * kEach});
}

}  // namespace
}  // namespace scxkit
