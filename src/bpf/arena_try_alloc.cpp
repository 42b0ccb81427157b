#include "bpf/arena_try_alloc.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "arena_try_alloc.skel.h"
#include "bpf/libbpf_util.hpp"

namespace scxkit::bpf {

struct ArenaTryAlloc::Skeleton {
  arena_try_alloc* skel = nullptr;
  std::atomic_flag in_use;  // one call at a time: the result is one global
  ~Skeleton() { arena_try_alloc__destroy(skel); }
};

namespace {

// The verifier's verdict: the last line of its log before its statistics.
std::string_view verdict(std::string_view log) {
  log = log.substr(0, log.find('\0'));
  std::string_view last;
  while (!log.empty()) {
    const auto nl = log.find('\n');
    const std::string_view line = log.substr(0, nl);
    log.remove_prefix(nl == std::string_view::npos ? log.size() : nl + 1);
    if (line.empty()) continue;
    if (line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0) break;
    last = line;
  }
  return last;
}

}  // namespace

ArenaTryAlloc::ArenaTryAlloc(std::unique_ptr<Skeleton> skel) : skel_(std::move(skel)) {}
ArenaTryAlloc::ArenaTryAlloc(ArenaTryAlloc&&) noexcept = default;
ArenaTryAlloc& ArenaTryAlloc::operator=(ArenaTryAlloc&&) noexcept = default;
ArenaTryAlloc::~ArenaTryAlloc() = default;

Result<ArenaTryAlloc> ArenaTryAlloc::load(int arena_map_fd) {
  auto holder = std::make_unique<Skeleton>();
  holder->skel = arena_try_alloc__open();
  if (holder->skel == nullptr) return libbpf_error("opening the arena_try_alloc BPF object", errno);
  if (const int err = bpf_map__reuse_fd(holder->skel->maps.arena, arena_map_fd); err != 0) {
    return libbpf_error("handing the arena map to the arena_try_alloc BPF object", err);
  }
  std::string log(16 * 1024, '\0');
  bpf_program__set_log_buf(holder->skel->progs.arena_try_alloc, log.data(), log.size());
  // A refusal is an answer here, not a failure to print: libbpf's own
  // warnings are off for the load (process-wide, for that moment).
  const libbpf_print_fn_t old = libbpf_set_print(nullptr);
  const int err = arena_try_alloc__load(holder->skel);
  libbpf_set_print(old);
  if (err != 0) {
    if (err == -EPERM) return libbpf_error("loading the arena_try_alloc BPF program", err);
    return make_error(
        Errc::unsupported,
        fmt::format("this kernel lets only sleepable BPF programs allocate arena "
                    "pages (the verifier refused bpf_arena_alloc_pages in a program "
                    "that cannot sleep: \"{}\"), so no call into its allocator can "
                    "promise not to sleep; call alloc_pages where sleeping is allowed",
                    verdict(log)));
  }
  return ArenaTryAlloc(std::move(holder));
}

Result<std::uint64_t> ArenaTryAlloc::alloc_pages(std::uint64_t addr, std::uint32_t count,
                                                 int node) {
  if (skel_->in_use.test_and_set(std::memory_order_acquire)) {
    return make_error(Errc::busy,
                      "another thread of this process is in try_alloc_pages on this arena; retry");
  }
  std::uint64_t args[3] = {addr, count,
                           static_cast<std::uint64_t>(static_cast<std::int64_t>(node))};
  auto r = test_run(skel_->skel->progs.arena_try_alloc, args, sizeof(args));
  const std::uint64_t got = skel_->skel->bss->result;
  skel_->in_use.clear(std::memory_order_release);
  if (!r) return tl::unexpected(r.error());
  return got;
}

}  // namespace scxkit::bpf
