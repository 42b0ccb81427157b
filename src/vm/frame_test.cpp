#include "vm/frame.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace scxkit::vm::internal {
namespace {

std::vector<Frame> decode_all(FrameDecoder& d) {
  std::vector<Frame> out;
  for (;;) {
    auto f = d.next();
    EXPECT_TRUE(f) << f.error().message;
    if (!f || !*f) return out;
    out.push_back(std::move(**f));
  }
}

TEST(Frame, HeaderIsMagicTypeAndLittleEndianLength) {
  const std::string f = encode_frame(FrameType::exit, "exit 7");
  ASSERT_EQ(f.size(), kFrameHeader + 6);
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0xA5);
  EXPECT_EQ(f[1], 4);
  EXPECT_EQ(f.substr(2, 4), std::string("\x06\x00\x00\x00", 4));
  EXPECT_EQ(f.substr(6), "exit 7");
}

TEST(Frame, ReassemblesFramesFedOneByteAtATime) {
  const std::string stream = encode_frame(FrameType::ready, "1.5") +
                             encode_frame(FrameType::out, "") +
                             encode_frame(FrameType::file, std::string("a/b\0data", 8));
  FrameDecoder d;
  std::vector<Frame> got;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    auto more = decode_all(d);
    got.insert(got.end(), more.begin(), more.end());
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, FrameType::ready);
  EXPECT_EQ(got[0].payload, "1.5");
  EXPECT_EQ(got[1].payload, "");
  EXPECT_EQ(got[2].payload, std::string("a/b\0data", 8));
}

TEST(Frame, GarbageUnknownTypesAndOversizedFramesAreErrors) {
  FrameDecoder garbage;
  garbage.feed("hello world");
  EXPECT_FALSE(garbage.next());
  FrameDecoder unknown;
  unknown.feed(std::string("\xA5\x09\x00\x00\x00\x00", 6));
  EXPECT_FALSE(unknown.next());
  FrameDecoder huge;
  huge.feed(std::string("\xA5\x02\x00\x00\x20\x00", 6));  // 2 MiB
  auto f = huge.next();
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, Errc::too_big);
}

RC_GTEST_PROP(FrameProperty, AnySequenceSurvivesAnyCutting,
              (const std::vector<std::pair<std::uint8_t, std::string>>& frames,
               std::size_t cut_seed)) {
  std::string stream;
  std::vector<Frame> sent;
  for (const auto& [t, payload] : frames) {
    const auto type = static_cast<FrameType>(1 + t % 7);
    sent.push_back({type, payload});
    stream += encode_frame(type, payload);
  }
  FrameDecoder d;
  std::vector<Frame> got;
  std::size_t at = 0, step = 1 + cut_seed % 97;
  while (at < stream.size()) {
    const std::size_t n = std::min(step, stream.size() - at);
    d.feed(std::string_view(stream).substr(at, n));
    at += n;
    step = 1 + (step * 31 + 7) % 97;
    for (auto f = d.next(); f && *f; f = d.next()) got.push_back(**f);
  }
  RC_ASSERT(got.size() == sent.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    RC_ASSERT(got[i].type == sent[i].type);
    RC_ASSERT(got[i].payload == sent[i].payload);
  }
}

}  // namespace
}  // namespace scxkit::vm::internal
