#include "vm/kernel_image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "vm/os.hpp"
#include "vm/process.hpp"

namespace scxkit::vm::internal {

namespace {

template <class T>
bool read_at(std::string_view data, std::size_t offset, T* out) {
  if (offset > data.size() || data.size() - offset < sizeof(T)) return false;
  std::memcpy(out, data.data() + offset, sizeof(T));
  return true;
}

struct Format {
  std::string_view magic, tool, name;
};
// The compressors a Linux x86 bzImage may use (CONFIG_KERNEL_*), by magic.
constexpr Format kFormats[] = {
    {std::string_view("\x28\xb5\x2f\xfd", 4), "zstd", "zstd"},
    {std::string_view("\xfd"
                      "7zXZ\x00",
                      6),
     "xz", "xz"},
    {std::string_view("\x1f\x8b", 2), "gzip", "gzip"},
    {std::string_view("\x02\x21\x4c\x18", 4), "lz4", "lz4"},
    {std::string_view("BZh", 3), "bzip2", "bzip2"},
    {std::string_view("\x89LZO", 4), "lzop", "lzo"},
    {std::string_view("\x5d\x00\x00", 3), "lzma", "lzma"},
};

}  // namespace

Result<Payload> find_payload(std::string_view bz) {
  std::uint32_t header_magic = 0;
  std::uint16_t protocol = 0;
  std::uint8_t setup_sects = 0;
  std::uint32_t offset = 0, length = 0;
  if (!read_at(bz, 0x202, &header_magic) || header_magic != 0x53726448 /* "HdrS" */) {
    return make_error(Errc::invalid_argument, "not a bzImage: no HdrS boot header at 0x202");
  }
  read_at(bz, 0x206, &protocol);
  if (protocol < 0x208) {
    return make_error(
        Errc::unsupported,
        fmt::format("boot protocol {:#x} is older than 2.08 and names no payload", protocol));
  }
  read_at(bz, 0x1f1, &setup_sects);
  read_at(bz, 0x248, &offset);
  read_at(bz, 0x24c, &length);
  // The protected-mode part starts after the boot sector and the setup sectors.
  const std::size_t start = (std::size_t{setup_sects == 0 ? 4u : setup_sects} + 1) * 512 + offset;
  if (start >= bz.size() || length > bz.size() - start || length < 8) {
    return make_error(Errc::invalid_argument, "the bzImage's payload lies outside the file");
  }
  const std::string_view payload = bz.substr(start, length);
  for (const auto& f : kFormats) {
    if (payload.substr(0, f.magic.size()) == f.magic) {
      return Payload{start, length, std::string(f.tool), std::string(f.name)};
    }
  }
  return make_error(Errc::unsupported, "the bzImage's payload has no known compression magic");
}

Result<std::string> elf_section(std::string_view elf, std::string_view name) {
  Elf64_Ehdr eh{};
  if (!read_at(elf, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr)) {
    return make_error(Errc::invalid_argument, "not a 64-bit ELF file");
  }
  Elf64_Shdr strtab{};
  if (!read_at(elf, eh.e_shoff + std::size_t{eh.e_shstrndx} * sizeof(Elf64_Shdr), &strtab)) {
    return make_error(Errc::invalid_argument, "ELF section name table lies outside the file");
  }
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh{};
    if (!read_at(elf, eh.e_shoff + i * sizeof(Elf64_Shdr), &sh)) break;
    const std::size_t name_at = strtab.sh_offset + sh.sh_name;
    if (name_at >= elf.size()) continue;
    const std::string_view sh_name(elf.data() + name_at,
                                   strnlen(elf.data() + name_at, elf.size() - name_at));
    if (sh_name != name) continue;
    if (sh.sh_offset > elf.size() || sh.sh_size > elf.size() - sh.sh_offset) {
      return make_error(Errc::invalid_argument,
                        fmt::format("ELF section {} lies outside the file", name));
    }
    return std::string(elf.substr(sh.sh_offset, sh.sh_size));
  }
  return std::string();
}

Result<void> unpack_vmlinux(const std::string& vmlinuz, const std::string& work_dir,
                            const std::string& vmlinux_out) {
  auto image = read_file(vmlinuz);
  if (!image) return tl::unexpected(image.error());
  auto payload = find_payload(*image);
  if (!payload) return tl::unexpected(payload.error());
  if (find_executable(payload->tool).empty()) {
    return make_error(Errc::not_found, fmt::format("the kernel is {}-compressed and '{}' is not "
                                                   "installed (apt-get install {})",
                                                   payload->format, payload->tool, payload->tool));
  }
  const std::string packed = work_dir + "/vmlinux.packed";
  Fd out(::open(vmlinux_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) return os_error(fmt::format("creating {}", vmlinux_out), errno);
  // x86 appends the unpacked size (4 bytes) after the compressed stream;
  // decompressors that reject trailing bytes get the stream without it.
  for (std::size_t trailer : {4u, 0u}) {
    auto wrote = write_file(
        packed, std::string_view(*image).substr(payload->offset, payload->length - trailer));
    if (!wrote) return wrote;
    if (::ftruncate(out.get(), 0) != 0 || ::lseek(out.get(), 0, SEEK_SET) != 0) {
      return os_error(fmt::format("truncating {}", vmlinux_out), errno);
    }
    auto run = run_tool({.argv = {payload->tool, "-dc", packed}, .stdout_fd = out.get()},
                        Clock::now() + std::chrono::minutes(5));
    if (!run) return tl::unexpected(run.error());
    if (run->status == 0) break;
    if (trailer == 0) {
      return make_error(Errc::invalid_argument,
                        fmt::format("{} could not unpack the kernel in {}: {}", payload->tool,
                                    vmlinuz, run->err));
    }
  }
  std::error_code ec;
  std::filesystem::remove(packed, ec);
  return {};
}

bool has_pvh_entry(std::string_view elf) {
  constexpr std::uint32_t kXenElfNotePhys32Entry = 18;
  auto notes = elf_section(elf, ".notes");
  if (!notes) return false;
  const std::string_view n = *notes;
  std::size_t at = 0;
  auto align4 = [](std::size_t v) { return (v + 3) & ~std::size_t{3}; };
  while (at + 12 <= n.size()) {
    std::uint32_t namesz = 0, descsz = 0, type = 0;
    read_at(n, at, &namesz);
    read_at(n, at + 4, &descsz);
    read_at(n, at + 8, &type);
    const std::size_t name_at = at + 12;
    if (name_at + namesz > n.size()) return false;
    if (type == kXenElfNotePhys32Entry && namesz == 4 &&
        n.substr(name_at, 4) == std::string_view("Xen\0", 4)) {
      return true;
    }
    at = name_at + align4(namesz) + align4(descsz);
  }
  return false;
}

}  // namespace scxkit::vm::internal
