#include "bpf/bpf_syscall.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace scxkit::bpf {

namespace {
long sys_bpf(int cmd, bpf_attr* attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}
}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

Result<Fd> create_arena_map(std::uint32_t pages, std::uint64_t map_extra, std::uint32_t map_flags,
                            int numa_node) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));  // padding included, or the kernel says EINVAL
  attr.map_type = kMapTypeArena;
  attr.max_entries = pages;
  attr.map_flags = map_flags;
  attr.map_extra = map_extra;
  if (numa_node >= 0) {
    attr.map_flags |= BPF_F_NUMA_NODE;
    attr.numa_node = static_cast<std::uint32_t>(numa_node);
  }
  std::strncpy(attr.map_name, "scxkit_arena", sizeof(attr.map_name) - 1);
  const long fd = sys_bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) {
    const int e = errno;
    return os_error(e == EPERM ? "creating a BPF arena map (needs root or CAP_BPF)"
                               : "creating a BPF arena map (needs Linux 6.9+ with arenas)",
                    e);
  }
  return Fd(static_cast<int>(fd));
}

Result<Fd> load_syscall_program(std::uint32_t value) {
  // r0 = value; exit
  const bpf_insn prog[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, static_cast<std::int32_t>(value)},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  const char license[] = "GPL";
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_SYSCALL;
  attr.insns = reinterpret_cast<std::uintptr_t>(prog);
  attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
  attr.license = reinterpret_cast<std::uintptr_t>(license);
  attr.prog_flags = BPF_F_SLEEPABLE;  // syscall programs must be sleepable
  std::strncpy(attr.prog_name, "scxkit_probe", sizeof(attr.prog_name) - 1);
  const long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) return os_error("loading a SEC(\"syscall\") program", errno);
  return Fd(static_cast<int>(fd));
}

Result<std::uint32_t> run_syscall_program(std::uint32_t value) {
  auto prog_fd = load_syscall_program(value);
  if (!prog_fd) return tl::unexpected(prog_fd.error());
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.test.prog_fd = static_cast<std::uint32_t>(prog_fd->get());
  if (sys_bpf(BPF_PROG_TEST_RUN, &attr) < 0) {
    return os_error("running the program with BPF_PROG_TEST_RUN", errno);
  }
  return attr.test.retval;
}

Result<std::string> read_prog_stream(int prog_fd, ProgStream stream) {
  // The 6.17 uapi layout of attr.prog_stream_read, which Debian's headers lack.
  struct StreamRead {
    std::uint64_t stream_buf;
    std::uint32_t stream_buf_len;
    std::uint32_t stream_id;
    std::uint32_t prog_fd;
  };
  static_assert(sizeof(StreamRead) <= sizeof(bpf_attr));
  std::string out;
  char buf[4096];
  for (;;) {
    bpf_attr attr;
    std::memset(&attr, 0, sizeof(attr));  // padding included, or the kernel says EINVAL
    const StreamRead req{reinterpret_cast<std::uintptr_t>(buf), sizeof(buf),
                         static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(prog_fd)};
    std::memcpy(&attr, &req, sizeof(req));
    const long n = sys_bpf(static_cast<int>(kCmdProgStreamReadByFd), &attr);
    if (n < 0) {
      const int e = errno;
      if (e == EINVAL || e == ENOTTY || e == EOPNOTSUPP) {
        // An unknown command and a descriptor of the wrong kind look alike.
        return make_error(Errc::unsupported,
                          fmt::format("the kernel refused to read a BPF program stream ({}): it "
                                      "has no program streams (Linux 6.17+ has them), or "
                                      "descriptor {} is not a BPF program",
                                      std::strerror(e), prog_fd));
      }
      if (e == EPERM) {
        return make_error(Errc::unsupported,
                          "reading a BPF program stream: not permitted (run as root)");
      }
      return os_error("reading a BPF program stream", e);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace scxkit::bpf
