// The OS calls the VM runner makes, each result checked, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "bpf/bpf_syscall.hpp"
#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

using Fd = bpf::Fd;
using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline` for poll(2), clamped to [0, 2^30].
int poll_ms_until(Clock::time_point deadline);

// Writes everything, retrying on EINTR and waiting (until the deadline) when
// the descriptor is non-blocking and full.
Result<void> write_all(int fd, std::string_view data,
                       Clock::time_point deadline = Clock::time_point::max());
// One read: the bytes read, "" at end of file; EAGAIN is an empty string too,
// so callers use poll() to tell them apart.
Result<std::string> read_some(int fd, std::size_t max, bool* eof);
Result<void> set_nonblocking(int fd);

Result<std::pair<Fd, Fd>> socket_pair();
Result<std::pair<Fd, Fd>> pipe_pair();
// An anonymous file: exists only as long as a descriptor refers to it.
Result<Fd> memory_file(const char* name);

Result<std::string> read_file(const std::string& path);
Result<void> write_file(const std::string& path, std::string_view data, unsigned mode = 0644);

}  // namespace scxkit::vm::internal
