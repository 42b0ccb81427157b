// What is inside a bzImage: the compressed vmlinux (found through the x86
// boot protocol header), unpacked with the matching Debian tool; its raw BTF
// (.BTF section) for `bpftool btf dump file`, and its PVH entry note.
#pragma once

#include <string>
#include <string_view>

#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

struct Payload {
  std::size_t offset = 0, length = 0;
  std::string tool;    // decompressor command: "zstd", "xz", "gzip", ...
  std::string format;  // for messages: "zstd", ...
};

// Locates the compressed kernel in a bzImage (boot protocol >= 2.08:
// payload_offset/payload_length after the setup sectors) and names the tool
// its magic number calls for.
Result<Payload> find_payload(std::string_view bzimage);

// The raw bytes of an ELF64 file's section `name` ("" result = absent).
Result<std::string> elf_section(std::string_view elf, std::string_view name);

// Unpacks the ELF vmlinux inside `vmlinuz` to `vmlinux_out`, using
// `work_dir` for the compressed payload.
Result<void> unpack_vmlinux(const std::string& vmlinuz, const std::string& work_dir,
                            const std::string& vmlinux_out);

// Whether a vmlinux has a PVH entry point (Xen ELF note 18), so QEMU can boot
// it directly and the guest skips decompressing itself (seconds under TCG).
bool has_pvh_entry(std::string_view elf);

}  // namespace scxkit::vm::internal
