// discover_programs(): the maps of a program set and the one arena it shares.
#include <bpf/libbpf.h>

#include <algorithm>

#include <fmt/format.h>

#include "bpf/bpf_objects.hpp"
#include "scxkit/bpf_discovery.hpp"

namespace scxkit {

struct KernelArenaMap::State {
  bpf::Fd fd;
  BpfMapInfo info;
};

const BpfMapInfo& KernelArenaMap::info() const {
  return state_->info;
}
int KernelArenaMap::fd() const {
  return state_->fd.get();
}

namespace internal {

// Collects programs one at a time and remembers which one first used which
// arena, so a conflict names both sides.
class ProgramSetBuilder {
 public:
  Result<void> add(int prog_fd) {
    auto prog = bpf::prog_info(prog_fd);
    if (!prog) return tl::unexpected(prog.error());
    for (std::uint32_t id : prog->map_ids) {
      if (std::any_of(set_.maps.begin(), set_.maps.end(),
                      [id](const BpfMapInfo& m) { return m.id == id; })) {
        if (arena_ && arena_->info().id != id && is_arena(id)) return conflict(*prog, id);
        continue;
      }
      auto fd = bpf::open_map_by_id(id);
      if (!fd) return tl::unexpected(fd.error());
      auto info = bpf::map_info(fd->get());
      if (!info) return tl::unexpected(info.error());
      set_.maps.push_back(*info);
      if (!info->is_arena()) continue;
      if (arena_) return conflict(*prog, id);
      arena_user_ = prog->name;
      arena_ = KernelArenaMap(std::make_shared<const KernelArenaMap::State>(
          KernelArenaMap::State{std::move(*fd), *info}));
    }
    set_.programs.push_back(std::move(*prog));
    return {};
  }

  Result<ProgramSet> finish(ArenaNeed need) {
    if (need == ArenaNeed::required && !arena_) {
      std::string names;
      for (const auto& p : set_.programs) names += (names.empty() ? "" : ", ") + p.name;
      return make_error(Errc::not_found,
                        fmt::format("none of the {} BPF programs ({}) uses a BPF arena map",
                                    set_.programs.size(), names));
    }
    set_.arena = std::move(arena_);
    return std::move(set_);
  }

 private:
  bool is_arena(std::uint32_t id) const {
    return std::any_of(set_.maps.begin(), set_.maps.end(),
                       [id](const BpfMapInfo& m) { return m.id == id && m.is_arena(); });
  }
  const BpfMapInfo& map(std::uint32_t id) const {
    return *std::find_if(set_.maps.begin(), set_.maps.end(),
                         [id](const BpfMapInfo& m) { return m.id == id; });
  }
  tl::unexpected<Error> conflict(const BpfProgramInfo& prog, std::uint32_t id) const {
    const BpfMapInfo& first = arena_->info();
    const BpfMapInfo& second = map(id);
    return make_error(
        Errc::invalid_argument,
        fmt::format("the programs use two different BPF arenas: map {} '{}' (used by "
                    "{}) and map {} '{}' (used by {}); a program set shares one arena",
                    first.id, first.name, arena_user_, second.id, second.name, prog.name));
  }

  ProgramSet set_;
  std::optional<KernelArenaMap> arena_;
  std::string arena_user_;
};

}  // namespace internal

Result<ProgramSet> discover_programs(std::span<const int> prog_fds, ArenaNeed need) {
  internal::ProgramSetBuilder builder;
  for (int fd : prog_fds) {
    if (auto r = builder.add(fd); !r) return tl::unexpected(r.error());
  }
  return builder.finish(need);
}

Result<ProgramSet> discover_programs(const bpf_object& obj, ArenaNeed need) {
  std::vector<int> fds;
  bpf_program* prog = nullptr;
  // libbpf's iterator takes a non-const object but does not change it.
  auto* o = const_cast<bpf_object*>(&obj);
  bpf_object__for_each_program(prog, o) {
    if (bpf_program__fd(prog) >= 0) fds.push_back(bpf_program__fd(prog));
  }
  if (fds.empty()) {
    return make_error(
        Errc::not_found,
        fmt::format("BPF object '{}' has no loaded program: load it first", bpf_object__name(o)));
  }
  return discover_programs(fds, need);
}

}  // namespace scxkit
