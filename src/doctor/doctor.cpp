#include "scxkit/doctor.hpp"

#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "bpf/bpf_syscall.hpp"
#include "bpf/stream_probe.hpp"
#include "scxkit/arena.hpp"
#include "scxkit/cgroup.hpp"
#include "scxkit/sched_ext.hpp"

namespace scxkit {

namespace {

Capability probe_bpf_arena() {
  Capability c{"bpf_arena", false, ""};
  auto fd = bpf::create_arena_map(1, 0, arena_flags::mmapable);
  if (!fd) {
    c.reason = fd.error().message;
    return c;
  }
  void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  if (p == MAP_FAILED) {
    c.reason = fmt::format("arena map created but mmap failed: {}", std::strerror(errno));
    return c;
  }
  static_cast<volatile char*>(p)[0] = 1;  // the first touch allocates a kernel arena page
  munmap(p, kPageSize);
  c.available = true;
  c.reason = "created a 1-page BPF_MAP_TYPE_ARENA map, mmapped it and wrote to it";
  return c;
}

Capability probe_bpf_prog() {
  Capability c{"bpf_prog", false, ""};
  auto ret = bpf::run_syscall_program(42);
  if (!ret) {
    c.reason = ret.error().message;
  } else if (*ret != 42) {
    c.reason = fmt::format("SEC(\"syscall\") program ran but returned {} instead of 42", *ret);
  } else {
    c.available = true;
    c.reason = "loaded a SEC(\"syscall\") program and ran it with BPF_PROG_TEST_RUN";
  }
  return c;
}

Capability probe_arena_emulation() {
  Capability c{"arena_emulation", false, ""};
  auto a = Arena::create({.max_entries = 1});
  if (!a) {
    c.reason = a.error().message;
    return c;
  }
  auto p = a->alloc_pages(nullptr, 1);
  if (!p) {
    c.reason = p.error().message;
    return c;
  }
  static_cast<char*>(*p)[0] = 7;
  if (static_cast<char*>(a->kern_addr(Arena::offset_of_user(*p)))[0] != 7) {
    c.reason = "a page written in the user view did not read back in the kernel view";
    return c;
  }
  c.available = true;
  c.reason = "emulated arena (userfaultfd view server, MADV_GUARD_INSTALL guard markers) works";
  return c;
}

Capability probe_sched_ext(const std::string& root) {
  Capability c{"sched_ext", false, ""};
  const SchedExtStatus s = read_sched_ext_status(root);
  if (!s.present) {
    c.reason =
        fmt::format("{} is absent: the kernel was built without CONFIG_SCHED_CLASS_EXT", root);
    return c;
  }
  c.available = true;
  c.reason =
      fmt::format("state {}{}", s.state, s.ops.empty() ? "" : fmt::format(", scheduler {}", s.ops));
  return c;
}

Capability probe_cgroup(const std::string& mountinfo) {
  Capability c{"cgroup", false, ""};
  auto layout = detect_cgroup_layout(mountinfo);
  if (!layout) {
    c.reason = layout.error().message;
  } else if (layout->mounts.empty()) {
    c.reason = fmt::format("no cgroup or cgroup2 mount in {}", mountinfo);
  } else {
    c.available = true;
    c.reason = layout->summary();
  }
  return c;
}

// The first executable `name` in $PATH, then in `extra` (":"-separated), or "".
std::string find_program(const std::string& name, const std::string& extra = "") {
  const char* path = std::getenv("PATH");
  const std::string dirs = std::string(path != nullptr ? path : "/usr/bin:/bin") + ":" + extra;
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      const std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    start = end + 1;
  }
  return "";
}

Capability probe_clang_bpf() {
  Capability c{"clang_bpf", false, "clang-19 not found in PATH (apt-get install clang-19)"};
  if (const std::string path = find_program("clang-19"); !path.empty()) {
    c.available = true;
    c.reason = fmt::format("{} (targets BPF with -target bpf -mcpu=v3)", path);
  }
  return c;
}

Capability probe_bpftool() {
  Capability c{"bpftool", false,
               "bpftool not found in PATH, /usr/sbin or /sbin (apt-get install bpftool; 7.x from "
               "bookworm-backports generates the skeletons)"};
  if (const std::string path = find_program("bpftool", "/usr/sbin:/sbin"); !path.empty()) {
    c.available = true;
    c.reason = fmt::format("{} (generates vmlinux.h and libbpf skeletons)", path);
  }
  return c;
}

Capability probe_libbpf() {
  Capability c{"libbpf", false, ""};
  const auto major = libbpf_major_version(), minor = libbpf_minor_version();
  c.available = major > 1 || (major == 1 && minor >= 4);
  c.reason = fmt::format("runtime library {}.{}{}", major, minor,
                         c.available ? " (arenas, skeletons, struct_ops links)"
                                     : ": 1.4 or newer is needed for arenas");
  return c;
}

Capability probe_bpf_streams() {
  Capability c{"bpf_streams", false, ""};
  auto prog = bpf::load_syscall_program(0);
  if (!prog) {
    c.reason = prog.error().message;
    return c;
  }
  if (auto read = bpf::read_prog_stream(prog->get(), bpf::ProgStream::err); !read) {
    c.reason = read.error().message;
    return c;
  }
  c.available = true;
  auto printed = bpf::probe_stream_print();
  c.reason = printed ? "read a program's stream, and BPF code printed to one"
                     : fmt::format(
                           "program streams can be read (scxkit prog stderr works), but "
                           "BPF code cannot print to them: {}",
                           printed.error().message);
  return c;
}

}  // namespace

std::vector<Capability> probe_host(const DoctorOptions& options) {
  return {probe_bpf_arena(),
          probe_bpf_prog(),
          probe_arena_emulation(),
          probe_sched_ext(options.sched_ext_root),
          probe_cgroup(options.mountinfo),
          probe_clang_bpf(),
          probe_bpftool(),
          probe_libbpf(),
          probe_bpf_streams()};
}

}  // namespace scxkit
