// A writer of the "newc" cpio format the kernel unpacks an initramfs from
// (Documentation/driver-api/early-userspace/buffer-format.rst). Written here
// rather than staged on disk for cpio(1), so nothing named is left behind.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

class CpioWriter {
 public:
  // Appends to `out`; paths are absolute guest paths ("/bin/busybox").
  explicit CpioWriter(std::string* out) : out_(out) {}

  // Parent directories are added (mode 0755) as needed; a path given twice
  // keeps its first entry.
  void add_dir(std::string_view path, unsigned mode = 0755);
  void add_file(std::string_view path, std::string_view data, unsigned mode = 0644);
  void add_symlink(std::string_view path, std::string_view target);
  void add_char_device(std::string_view path, unsigned major, unsigned minor, unsigned mode = 0600);
  // The trailer entry; nothing may be added after it.
  void finish();

  bool has(std::string_view path) const { return paths_.count(std::string(path)) != 0; }

 private:
  bool begin(std::string_view path);
  void entry(std::string_view path, std::uint32_t mode, std::string_view data, unsigned rmajor = 0,
             unsigned rminor = 0);
  std::string* out_;
  std::set<std::string> paths_;
  std::uint32_t next_ino_ = 1;
};

}  // namespace scxkit::vm::internal
