#include "vm/cpio.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

namespace scxkit::vm::internal {

namespace {

void pad4(std::string* out) {
  while (out->size() % 4 != 0) out->push_back('\0');
}

std::string_view parent_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == 0 || slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

}  // namespace

bool CpioWriter::begin(std::string_view path) {
  if (path.empty() || path == "/" || has(path)) return false;
  if (auto parent = parent_of(path); !parent.empty() && !has(parent)) add_dir(parent);
  paths_.insert(std::string(path));
  return true;
}

void CpioWriter::entry(std::string_view path, std::uint32_t mode, std::string_view data,
                       unsigned rmajor, unsigned rminor) {
  // Names are relative to the root in the archive: "bin/busybox".
  const std::string_view name = path.substr(path.find_first_not_of('/'));
  const bool trailer = name == "TRAILER!!!";
  fmt::format_to(
      std::back_inserter(*out_),
      "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
      trailer ? 0 : next_ino_++, mode, 0, 0, S_ISDIR(mode) ? 2 : 1, 0, data.size(), 0, 0, rmajor,
      rminor, name.size() + 1, 0);
  out_->append(name);
  out_->push_back('\0');
  pad4(out_);
  out_->append(data);
  pad4(out_);
}

void CpioWriter::add_dir(std::string_view path, unsigned mode) {
  if (begin(path)) entry(path, S_IFDIR | mode, {});
}

void CpioWriter::add_file(std::string_view path, std::string_view data, unsigned mode) {
  if (begin(path)) entry(path, S_IFREG | mode, data);
}

void CpioWriter::add_symlink(std::string_view path, std::string_view target) {
  if (begin(path)) entry(path, S_IFLNK | 0777, target);
}

void CpioWriter::add_char_device(std::string_view path, unsigned major, unsigned minor,
                                 unsigned mode) {
  if (begin(path)) entry(path, S_IFCHR | mode, {}, major, minor);
}

void CpioWriter::finish() {
  entry("TRAILER!!!", 0, {});
}

}  // namespace scxkit::vm::internal
