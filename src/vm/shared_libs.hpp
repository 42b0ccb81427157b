// The shared libraries a binary loads, as the dynamic loader resolves them
// (ldd), so the guest gets every one at the path the binary expects.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

struct LddOutput {
  std::vector<std::string> paths;    // resolved libraries and the loader, in order
  std::vector<std::string> missing;  // "libfoo.so.1" the loader could not find
};
// Parses ldd's lines: "libx.so => /path (0x..)", "/lib64/ld-linux-x86-64.so.2 (0x..)",
// "libx.so => not found"; the vDSO has no path and is skipped.
LddOutput parse_ldd(std::string_view text);

// The libraries `binary` needs ({} for a static binary or a non-ELF file);
// an error names the ones that cannot be found.
Result<std::vector<std::string>> shared_libraries(const std::string& binary);

}  // namespace scxkit::vm::internal
