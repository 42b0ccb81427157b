#include "scxkit/stream.hpp"

#include <bit>
#include <cstring>

namespace scxkit {

// Layout: each record is a 4-byte header (length | kCommitted) then the text,
// padded to 4 bytes. Writers reserve space with a CAS on head_, fill it, and
// publish the header last; the reader consumes committed records from tail_
// and zeroes what it consumed so stale text never reads as a header.

Stream::Stream(std::size_t capacity)
    : capacity_(std::bit_ceil(std::max<std::size_t>(capacity, 256))),
      words_(new std::atomic<std::uint32_t>[capacity_ / 4]) {
  for (std::size_t i = 0; i < capacity_ / 4; ++i) words_[i].store(0, std::memory_order_relaxed);
}

bool Stream::write(std::string_view record) noexcept {
  const std::uint64_t padded = (record.size() + 3) & ~std::uint64_t{3};
  const std::uint64_t need = 4 + padded;
  if (record.size() >= kCommitted || need > capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::uint64_t h = head_.load(std::memory_order_relaxed);
  do {
    if (h + need - tail_.load(std::memory_order_acquire) > capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!head_.compare_exchange_weak(h, h + need, std::memory_order_acquire,
                                        std::memory_order_relaxed));
  for (std::uint64_t i = 0; i < padded; i += 4) {
    std::uint32_t w = 0;
    std::memcpy(&w, record.data() + i, std::min<std::uint64_t>(4, record.size() - i));
    word(h + 4 + i).store(w, std::memory_order_relaxed);
  }
  word(h).store(static_cast<std::uint32_t>(record.size()) | kCommitted, std::memory_order_release);
  return true;
}

std::size_t Stream::read(char* buf, std::size_t len) {
  std::lock_guard<std::mutex> one_reader(reader_);
  std::uint64_t t = tail_.load(std::memory_order_relaxed);
  std::size_t copied = 0;
  while (t < head_.load(std::memory_order_acquire)) {
    const std::uint32_t header = word(t).load(std::memory_order_acquire);
    if ((header & kCommitted) == 0) break;  // its writer is still filling it
    const std::uint32_t size = header & ~kCommitted;
    if (copied + size > len) break;
    const std::uint64_t padded = (std::uint64_t{size} + 3) & ~std::uint64_t{3};
    for (std::uint64_t i = 0; i < padded; i += 4) {
      const std::uint32_t w = word(t + 4 + i).exchange(0, std::memory_order_relaxed);
      std::memcpy(buf + copied + i, &w, std::min<std::uint64_t>(4, size - i));
    }
    word(t).store(0, std::memory_order_relaxed);
    copied += size;
    t += 4 + padded;
    tail_.store(t, std::memory_order_release);
  }
  return copied;
}

std::string Stream::read_all() {
  std::string out;
  std::string chunk(capacity_, '\0');
  for (;;) {
    const std::size_t n = read(chunk.data(), chunk.size());
    if (n == 0) break;
    out.append(chunk.data(), n);
  }
  return out;
}

}  // namespace scxkit
