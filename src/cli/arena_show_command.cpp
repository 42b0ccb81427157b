// `scxkit arena show`: what a kernel BPF arena holds, seen from outside and
// without changing it (no page is touched, so none is allocated).
#include <bpf/libbpf.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "arena/page_table.hpp"
#include "bpf/arena_inspect.hpp"
#include "bpf/bpf_objects.hpp"
#include "cli/commands.hpp"

namespace scxkit::cli {

namespace {

struct ShowOptions {
  std::uint32_t map_id = 0;
  std::string pin;
};

std::string flag_names(std::uint32_t flags) {
  std::string out = fmt::format("0x{:x}", flags);
  const std::pair<std::uint32_t, const char*> known[] = {
      {arena_flags::mmapable, "mmapable"},
      {arena_flags::segv_on_fault, "segv_on_fault"},
      {arena_flags::no_user_conv, "no_user_conv"}};
  for (const auto& [bit, name] : known) {
    if (flags & bit) out += fmt::format(" {}", name);
  }
  return out;
}

std::string kib(std::uint64_t pages) {
  return fmt::format("{} KiB", pages * kPageSize / 1024);
}

// Runs of backed pages as "first-last" (or "first"), at most `limit` of them.
std::string used_ranges(const std::vector<bool>& backed, std::size_t limit) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> runs;
  internal::for_each_run(
      0, static_cast<std::uint32_t>(backed.size()), [&](std::uint32_t i) { return backed[i]; },
      [&](std::uint32_t first, std::uint32_t n) { runs.emplace_back(first, first + n - 1); });
  if (runs.empty()) return "none";
  std::string out = fmt::format("{} run(s):", runs.size());
  for (std::size_t r = 0; r < std::min(runs.size(), limit); ++r) {
    const auto [a, b] = runs[r];
    out += a == b ? fmt::format(" {}", a) : fmt::format(" {}-{}", a, b);
  }
  if (runs.size() > limit) out += fmt::format(" ... and {} more", runs.size() - limit);
  return out;
}

// One character per column: '.' nothing backed, '#' all backed, '+' some.
std::string density_map(const std::vector<bool>& backed, std::size_t columns) {
  const std::size_t per = (backed.size() + columns - 1) / columns;
  std::string out;
  for (std::size_t start = 0; start < backed.size(); start += per) {
    const std::size_t end = std::min(start + per, backed.size());
    const auto n = std::count(backed.begin() + static_cast<std::ptrdiff_t>(start),
                              backed.begin() + static_cast<std::ptrdiff_t>(end), true);
    out += n == 0 ? '.' : (static_cast<std::size_t>(n) == end - start ? '#' : '+');
  }
  return fmt::format("[{}] {} page(s) per column", out, per);
}

int run_show(const ShowOptions& o) {
  auto fd = o.pin.empty() ? bpf::open_map_by_id(o.map_id) : bpf::open_pinned_map(o.pin);
  if (!fd) {
    print_error(fd.error().message);
    return 1;
  }
  auto info = bpf::map_info(fd->get());
  if (!info) {
    print_error(info.error().message);
    return 1;
  }
  if (!info->is_arena()) {
    print_error(fmt::format("BPF map {} '{}' is not an arena (map type {}; arenas are type {})",
                            info->id, info->name, info->type, kBpfMapTypeArena));
    return 1;
  }
  fmt::print("arena map {} '{}'{}\n", info->id, info->name,
             o.pin.empty() ? "" : fmt::format(" pinned at {}", o.pin));
  fmt::print("  size          {} pages ({})\n", info->max_entries, kib(info->max_entries));
  fmt::print("  flags         {}\n", flag_names(info->map_flags));
  auto inspector = bpf::ArenaInspector::load(fd->get());
  if (!inspector && inspector.error().code == Errc::not_found) {
    fmt::print("  user address  not fixed yet: no process has mapped the arena\n");
    fmt::print("  allocated     0 pages (nothing can allocate before the first mapping)\n");
    return 0;
  }
  auto layout = inspector ? inspector->layout() : tl::unexpected(inspector.error());
  if (!layout) {
    print_error(layout.error().message);
    return 1;
  }
  const auto pages =
      static_cast<std::uint32_t>((layout->user_vm_end - layout->user_vm_start) / kPageSize);
  auto backed = inspector->backed_pages(pages);
  if (!backed) {
    print_error(backed.error().message);
    return 1;
  }
  const auto allocated =
      static_cast<std::uint64_t>(std::count(backed->begin(), backed->end(), true));
  fmt::print("  user address  0x{:x}-0x{:x} ({})\n", layout->user_vm_start, layout->user_vm_end,
             info->map_extra != 0 ? "fixed by map_extra" : "fixed by its first mapping");
  fmt::print("  kernel view   0x{:x} (arena offset 0)\n", layout->kern_vm_start);
  fmt::print("  allocated     {} of {} pages ({})\n", allocated, pages, kib(allocated));
  fmt::print("  resident      {} pages ({}): a kernel arena's pages are always in memory\n",
             allocated, kib(allocated));
  fmt::print("  used pages    {}\n", used_ranges(*backed, 16));
  fmt::print("  map           {}\n", density_map(*backed, std::min<std::size_t>(64, pages)));
  return 0;
}

}  // namespace

void add_arena_show_command(CLI::App* arena, int& exit_code) {
  static ShowOptions options;
  auto* show = arena->add_subcommand(
      "show",
      "Show a kernel BPF arena: size, user address, flags, allocated pages and where they are "
      "(reads through the kernel view; touches no page)");
  auto* id = show->add_option("--map-id", options.map_id, "The arena's BPF map id");
  auto* pin = show->add_option("--pin", options.pin, "The arena's pin path under /sys/fs/bpf");
  id->excludes(pin);
  show->callback([&exit_code, id, pin] {
    if (id->count() == 0 && pin->count() == 0) {
      print_error("arena show needs --map-id N or --pin PATH (see bpftool map list)");
      exit_code = 2;
      return;
    }
    libbpf_set_print(nullptr);  // failures come back as one error line
    exit_code = run_show(options);
  });
}

}  // namespace scxkit::cli
