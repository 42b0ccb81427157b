// Raw bpf(2) calls for what libbpf does not offer: arena maps created with
// the syscall (then handed to libbpf objects with bpf_map__reuse_fd), a
// minimal SEC("syscall") program for probing, and program stream reads
// (libbpf 1.4 predates them).
#pragma once

#include <cstdint>
#include <string>

#include "scxkit/error.hpp"

namespace scxkit::bpf {

// Values the Debian 6.1 uapi headers lack.
inline constexpr std::uint32_t kMapTypeArena = 33;
inline constexpr std::uint32_t kCmdProgStreamReadByFd = 37;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// BPF_MAP_TYPE_ARENA with `pages` pages; map_extra fixes user_vm_start (0: chosen at mmap).
// numa_node >= 0 asks for BPF_F_NUMA_NODE (Linux 6.18 refuses it for arenas: EINVAL).
// Errors keep the kernel's errno in Error::sys_errno.
Result<Fd> create_arena_map(std::uint32_t pages, std::uint64_t map_extra, std::uint32_t map_flags,
                            int numa_node = -1);
// Loads a BPF_PROG_TYPE_SYSCALL program "return value;".
Result<Fd> load_syscall_program(std::uint32_t value);
// Loads that program and runs it once with BPF_PROG_TEST_RUN; returns what it
// returned.
Result<std::uint32_t> run_syscall_program(std::uint32_t value);

// A BPF program's output streams (Linux 6.17+), written by BPF code with
// scxkit_stream_printk() (scxkit/bpf/stream.h) and by the kernel (e.g. on a stray arena access).
enum class ProgStream : std::uint32_t { out = 1, err = 2 };
// Reads everything the stream holds now; reading consumes it. Errors:
// unsupported (the kernel has no program streams), system_error.
Result<std::string> read_prog_stream(int prog_fd, ProgStream stream);

}  // namespace scxkit::bpf
