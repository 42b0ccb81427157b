#include "bpf/arena_inspect.hpp"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "arena_inspect.skel.h"
#include "bpf/libbpf_util.hpp"
#include "bpf/progs/arena_inspect.h"

namespace scxkit::bpf {

struct ArenaInspector::Skeleton {
  arena_inspect* skel = nullptr;
  ~Skeleton() { arena_inspect__destroy(skel); }
};

ArenaInspector::ArenaInspector(std::unique_ptr<Skeleton> skel) : skel_(std::move(skel)) {}
ArenaInspector::ArenaInspector(ArenaInspector&&) noexcept = default;
ArenaInspector& ArenaInspector::operator=(ArenaInspector&&) noexcept = default;
ArenaInspector::~ArenaInspector() = default;

Result<ArenaInspector> ArenaInspector::load(int arena_map_fd) {
  auto holder = std::make_unique<Skeleton>();
  holder->skel = arena_inspect__open();
  if (holder->skel == nullptr) return libbpf_error("opening the arena_inspect BPF object", errno);
  if (const int err = bpf_map__reuse_fd(holder->skel->maps.arena, arena_map_fd); err != 0) {
    return libbpf_error("handing the arena map to the arena_inspect BPF object", err);
  }
  // The verifier log says why a load failed; libbpf fills it only then.
  std::string log(16 * 1024, '\0');
  bpf_program__set_log_buf(holder->skel->progs.arena_layout, log.data(), log.size());
  if (const int err = arena_inspect__load(holder->skel); err != 0) {
    if (log.find("arena's user address must be set") != std::string::npos) {
      return make_error(Errc::not_found,
                        "the arena has no user address yet: nothing has mmapped it and it was "
                        "created without map_extra, so it has no pages either");
    }
    return load_error("arena_inspect", err);
  }
  return ArenaInspector(std::move(holder));
}

Result<ArenaLayout> ArenaInspector::layout() {
  scxkit_arena_layout out{};
  if (auto r = test_run(skel_->skel->progs.arena_layout, &out, sizeof(out)); !r) {
    return tl::unexpected(r.error());
  }
  return ArenaLayout{out.user_vm_start, out.user_vm_end, out.kern_vm_start};
}

Result<std::vector<bool>> ArenaInspector::backed_pages(std::uint32_t from, std::uint32_t count) {
  auto l = layout();
  if (!l) return tl::unexpected(l.error());
  std::vector<bool> backed(count, false);
  auto* bits = skel_->skel->bss->present_bits;
  const std::uint64_t pages = std::uint64_t{from} + count;
  for (std::uint64_t first = from; first < pages; first += SCXKIT_PROBE_CHUNK_PAGES) {
    // The kernel keeps page i at arena offset low32(user_vm_start) + i * 4096;
    // a user range never crosses a 4 GiB boundary, so this never wraps.
    scxkit_arena_probe probe{
        .base = l->kern_vm_start + static_cast<std::uint32_t>(l->user_vm_start),
        .first = static_cast<std::uint32_t>(first),
        .count = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(pages - first, SCXKIT_PROBE_CHUNK_PAGES)),
        .present = 0,
        .pad = 0};
    std::memset(bits, 0, sizeof(skel_->skel->bss->present_bits));
    auto r = test_run(skel_->skel->progs.arena_probe_pages, &probe, sizeof(probe));
    if (!r) return tl::unexpected(r.error());
    if (*r != 0) {
      return make_error(Errc::invalid_argument,
                        fmt::format("arena_probe_pages refused {} pages", probe.count));
    }
    for (std::uint32_t i = 0; i < probe.count; ++i) {
      backed[first - from + i] = (bits[i / 8] >> (i % 8)) & 1;
    }
  }
  return backed;
}

}  // namespace scxkit::bpf
