// scxkit::Stream — a bounded stream of text records, like a BPF program's
// stdout/stderr stream (bpf_stream_vprintk / BPF_PROG_STREAM_READ_BY_FD).
//
// Writers are lock-free and async-signal-safe: a fault handler reports
// violations into a stream. A full stream drops the whole record and counts
// it. Reading drains whole records in the order their space was reserved.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace scxkit {

class Stream {
 public:
  // Capacity in bytes, rounded up to a power of two (at least 256).
  explicit Stream(std::size_t capacity = 64 * 1024);

  // Appends one record, whole or not at all. Async-signal-safe; false = dropped.
  bool write(std::string_view record) noexcept;
  // Moves whole records, oldest first, into buf while they fit; returns bytes copied.
  std::size_t read(char* buf, std::size_t len);
  // Drains everything written so far.
  std::string read_all();

  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr std::uint32_t kCommitted = 1u << 31;
  std::atomic<std::uint32_t>& word(std::uint64_t pos) const {
    return words_[(pos % capacity_) / 4];
  }

  std::size_t capacity_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> words_;
  std::atomic<std::uint64_t> head_{0};  // bytes reserved by writers
  std::atomic<std::uint64_t> tail_{0};  // bytes consumed by the reader
  std::atomic<std::uint64_t> dropped_{0};
  std::mutex reader_;
};

}  // namespace scxkit
