#include "vm/initramfs.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vm/cpio.hpp"
#include "vm/process.hpp"
#include "vm/shared_libs.hpp"

namespace scxkit::vm::internal {

namespace fs = std::filesystem;

std::string init_script(const std::string& library_path) {
  return fmt::format(R"(#!/bin/busybox sh
# Written by scxkit: mounts what a sched_ext test needs, then runs the agent.
# The root is the initramfs itself (writable, in RAM): /tmp is not mounted
# over, since --add may have put files there.
/bin/busybox --install -s /bin
export PATH=/scxkit/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH={}
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
ip link set lo up 2>/dev/null
{} vm guest-agent
echo "scxkit: the guest agent failed (exit $?); powering off" >/dev/console
poweroff -f
)",
                     library_path, kGuestAgent);
}

namespace {

struct Builder {
  std::string archive;
  CpioWriter cpio{&archive};
  std::vector<std::string> library_dirs;
  std::size_t files = 0;

  Result<void> add_host_file(const std::string& host, const std::string& guest) {
    if (cpio.has(guest)) return {};
    auto data = read_file(host);
    if (!data) return tl::unexpected(data.error());
    std::error_code ec;
    const auto perms = fs::status(host, ec).permissions();
    const bool exec = (perms & fs::perms::owner_exec) != fs::perms::none;
    cpio.add_file(guest, *data, exec ? 0755 : 0644);
    ++files;
    auto libs = shared_libraries(host);
    if (!libs) return tl::unexpected(libs.error());
    for (const auto& lib : *libs) {
      const std::string dir = fs::path(lib).parent_path().string();
      if (std::find(library_dirs.begin(), library_dirs.end(), dir) == library_dirs.end()) {
        library_dirs.push_back(dir);
      }
      auto added = add_host_file(lib, lib);
      if (!added) return added;
    }
    return {};
  }

  Result<void> add_host_path(const std::string& path) {
    std::error_code ec;
    const fs::path abs = fs::absolute(path, ec);
    if (fs::is_directory(abs, ec)) {
      cpio.add_dir(abs.string());
      for (auto it = fs::recursive_directory_iterator(abs, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory()) cpio.add_dir(it->path().string());
        if (it->is_regular_file()) {
          auto added = add_host_file(it->path().string(), it->path().string());
          if (!added) return added;
        }
      }
      if (ec)
        return make_error(Errc::system_error, fmt::format("reading {}: {}", path, ec.message()));
      return {};
    }
    if (!fs::is_regular_file(abs, ec)) {
      return make_error(Errc::not_found,
                        fmt::format("cannot add {} to the guest: no such file or directory", path));
    }
    return add_host_file(abs.string(), abs.string());
  }
};

}  // namespace

Result<GuestImage> build_initramfs(const GuestImageSpec& spec) {
  if (spec.command.empty())
    return make_error(Errc::invalid_argument, "no command to run in the guest");
  const std::string busybox = find_executable("busybox");
  if (busybox.empty()) {
    return make_error(Errc::not_found, "busybox is not installed (apt-get install busybox-static)");
  }
  Builder b;
  b.cpio.add_dir("/tmp", 01777);
  for (const char* dir : {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/dev", "/run",
                          "/root", "/etc", kGuestOut, "/scxkit/bin"}) {
    b.cpio.add_dir(dir);
  }
  // The kernel opens /dev/console for /init before devtmpfs is mounted.
  b.cpio.add_char_device("/dev/console", 5, 1);
  b.cpio.add_file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  b.cpio.add_file("/etc/group", "root:x:0:\n");
  auto added = b.add_host_file(busybox, "/bin/busybox");
  if (!added) return tl::unexpected(added.error());
  added = b.add_host_file(spec.self_exe, kGuestAgent);
  if (!added) return tl::unexpected(added.error());
  // The command's binary from the host, unless it is scxkit itself (the
  // agent, first in the guest's PATH) or a name only busybox provides.
  if (spec.command[0] != "scxkit") {
    const std::string host = find_executable(spec.command[0]);
    if (!host.empty()) {
      added = b.add_host_path(host);
      if (!added) return tl::unexpected(added.error());
    }
  }
  for (const auto& path : spec.add) {
    added = b.add_host_path(path);
    if (!added) return tl::unexpected(added.error());
  }
  std::string argv;
  for (const auto& a : spec.command) {
    argv += a;
    argv.push_back('\0');
  }
  b.cpio.add_file(kGuestCommand, argv);
  b.cpio.add_file("/init", init_script(fmt::format("{}", fmt::join(b.library_dirs, ":"))), 0755);
  b.cpio.finish();

  auto fd = memory_file("scxkit-initramfs");
  if (!fd) return tl::unexpected(fd.error());
  auto wrote = write_all(fd->get(), b.archive);
  if (!wrote) return tl::unexpected(wrote.error());
  return GuestImage{std::move(*fd), b.archive.size(), b.files};
}

}  // namespace scxkit::vm::internal
