#include "bpf/bpf_objects.hpp"

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "bpf/libbpf_util.hpp"

namespace scxkit::bpf {

namespace {

Result<Fd> opened(int fd, std::string_view what) {
  if (fd >= 0) return Fd(fd);
  const int err = errno;
  if (err == ENOENT) return make_error(Errc::not_found, fmt::format("{}: no such object", what));
  return libbpf_error(what, err);
}

// The kernel fills whichever info struct matches the descriptor, so the kind
// is checked first: bpf(2) objects are anon inodes named after their kind.
bool is_bpf_kind(int fd, std::string_view kind) {
  char target[64] = {};
  const std::string link = fmt::format("/proc/self/fd/{}", fd);
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 && std::string_view(target, static_cast<std::size_t>(n)) == kind;
}

}  // namespace

Result<Fd> open_map_by_id(std::uint32_t id) {
  return opened(bpf_map_get_fd_by_id(id), fmt::format("opening BPF map id {}", id));
}

Result<Fd> open_prog_by_id(std::uint32_t id) {
  return opened(bpf_prog_get_fd_by_id(id), fmt::format("opening BPF program id {}", id));
}

Result<Fd> open_pinned_map(const std::string& path) {
  auto fd = opened(bpf_obj_get(path.c_str()), fmt::format("opening pinned BPF object {}", path));
  if (!fd) return fd;
  if (!is_bpf_kind(fd->get(), "anon_inode:bpf-map")) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{} is pinned but is not a BPF map (a program or link?)", path));
  }
  return fd;
}

Result<BpfMapInfo> map_info(int map_fd) {
  if (!is_bpf_kind(map_fd, "anon_inode:bpf-map")) {
    return make_error(Errc::invalid_argument,
                      fmt::format("descriptor {} is not a BPF map", map_fd));
  }
  bpf_map_info info;
  std::memset(&info, 0, sizeof(info));
  __u32 len = sizeof(info);
  if (bpf_map_get_info_by_fd(map_fd, &info, &len) != 0) {
    return libbpf_error("reading BPF map info", errno);
  }
  return BpfMapInfo{info.id,          info.type,      info.name,
                    info.max_entries, info.map_flags, info.map_extra};
}

Result<BpfProgramInfo> prog_info(int prog_fd) {
  // Twice: first for the number of maps, then with room for their ids.
  if (!is_bpf_kind(prog_fd, "anon_inode:bpf-prog")) {
    return make_error(Errc::invalid_argument,
                      fmt::format("descriptor {} is not a BPF program", prog_fd));
  }
  BpfProgramInfo out;
  for (int pass = 0; pass < 2; ++pass) {
    bpf_prog_info info;
    std::memset(&info, 0, sizeof(info));
    __u32 len = sizeof(info);
    info.nr_map_ids = static_cast<__u32>(out.map_ids.size());
    info.map_ids = reinterpret_cast<std::uintptr_t>(out.map_ids.data());
    if (bpf_prog_get_info_by_fd(prog_fd, &info, &len) != 0) {
      return libbpf_error("reading BPF program info", errno);
    }
    out.id = info.id;
    out.name = info.name;
    out.type = info.type;
    // Maps may come and go between the passes: keep what the kernel wrote.
    if (pass == 1 || info.nr_map_ids == 0) {
      out.map_ids.resize(std::min<std::size_t>(out.map_ids.size(), info.nr_map_ids));
      break;
    }
    out.map_ids.resize(info.nr_map_ids);
  }
  return out;
}

}  // namespace scxkit::bpf
