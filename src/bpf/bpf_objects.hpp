// Opening BPF maps and programs the kernel already holds (by id or pin path)
// and reading what the kernel says about them.
#pragma once

#include <cstdint>
#include <string>

#include "bpf/bpf_syscall.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit::bpf {

// Errors: not_found (no such id / path), unsupported (not permitted), system_error.
Result<Fd> open_map_by_id(std::uint32_t id);
Result<Fd> open_prog_by_id(std::uint32_t id);
// A pinned map under bpffs. Errors as above, invalid_argument when the pin
// is not a map.
Result<Fd> open_pinned_map(const std::string& path);

// Errors: invalid_argument when fd is not a map / program.
Result<BpfMapInfo> map_info(int map_fd);
Result<BpfProgramInfo> prog_info(int prog_fd);

}  // namespace scxkit::bpf
