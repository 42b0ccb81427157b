#include "vm/frame.hpp"

#include <fmt/format.h>

namespace scxkit::vm::internal {

namespace {
constexpr unsigned char kMagic = 0xA5;
}

std::string encode_frame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeader + payload.size());
  out.push_back(static_cast<char>(kMagic));
  out.push_back(static_cast<char>(type));
  const auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(payload);
  return out;
}

Result<std::optional<Frame>> FrameDecoder::next() {
  const std::string_view rest = std::string_view(buffer_).substr(consumed_);
  if (rest.size() < kFrameHeader) return std::optional<Frame>();
  if (static_cast<unsigned char>(rest[0]) != kMagic) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("the guest channel is out of step: byte {:#04x} where a frame begins",
                    static_cast<unsigned char>(rest[0])));
  }
  const auto type = static_cast<std::uint8_t>(rest[1]);
  if (type < static_cast<std::uint8_t>(FrameType::ready) ||
      type > static_cast<std::uint8_t>(FrameType::ack)) {
    return make_error(Errc::invalid_argument,
                      fmt::format("the guest channel sent unknown frame type {}", type));
  }
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i)
    n |= static_cast<std::uint32_t>(static_cast<unsigned char>(rest[2 + i])) << (8 * i);
  if (n > kMaxFramePayload) {
    return make_error(
        Errc::too_big,
        fmt::format("the guest channel sent a {}-byte frame (limit {})", n, kMaxFramePayload));
  }
  if (rest.size() < kFrameHeader + n) return std::optional<Frame>();
  Frame f{static_cast<FrameType>(type), std::string(rest.substr(kFrameHeader, n))};
  consumed_ += kFrameHeader + n;
  // Drop what was read once it is most of the buffer, so the buffer stays small.
  if (consumed_ > 4096 && consumed_ * 2 > buffer_.size()) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  return std::optional<Frame>(std::move(f));
}

}  // namespace scxkit::vm::internal
