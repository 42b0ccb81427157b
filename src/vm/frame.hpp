// The framed channel between the guest agent and the host over one
// virtio-serial port: the command's stdout and stderr, its exit, files
// brought out, and the handshake that ends a run. One port keeps every
// frame in order, so "done" means everything before it has arrived.
//
// A frame: magic 0xA5, type (1 byte), payload length (4 bytes, little
// endian), payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

enum class FrameType : std::uint8_t {
  ready = 1,  // guest -> host: the agent runs; payload: guest uptime in ms
  out = 2,    // command's stdout bytes
  err = 3,    // command's stderr bytes
  exit = 4,   // "exit N" | "signal N" | "exec ERRNO MESSAGE"
  file = 5,   // relative path, NUL, bytes to append to it
  done = 6,   // guest -> host: nothing more will come
  ack = 7,    // host -> guest: done received, power off now
};

inline constexpr std::size_t kFrameHeader = 6;
inline constexpr std::size_t kMaxFramePayload = 1 << 20;

std::string encode_frame(FrameType type, std::string_view payload);

struct Frame {
  FrameType type;
  std::string payload;
};

// Reassembles frames from a byte stream cut anywhere.
class FrameDecoder {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete frame, nullopt if more bytes are needed, or an error
  // if the stream is not frames (bad magic, unknown type, oversized).
  Result<std::optional<Frame>> next();

 private:
  std::string buffer_;
  std::size_t consumed_ = 0;
};

}  // namespace scxkit::vm::internal
