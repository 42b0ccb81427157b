// cmasks in an arena, and the kernel's per-CPU set_cmask scratch.
#include "scxkit/arena_cmask.hpp"

#include <fmt/format.h>

namespace scxkit {

namespace {

std::span<std::byte> kern_bytes(const Arena& arena, std::uint32_t offset, std::size_t size) {
  return {static_cast<std::byte*>(arena.kern_addr(offset)), size};
}

}  // namespace

Result<ArenaCmask> alloc_arena_cmask(Arena& arena, Pool& pool, std::uint32_t base,
                                     std::uint32_t nr_cids, std::uint32_t alloc_cids) {
  if (alloc_cids < nr_cids) {
    return make_error(Errc::invalid_argument,
                      fmt::format("cmask window of {} cids does not fit storage for {} cids",
                                  nr_cids, alloc_cids));
  }
  const std::size_t size = cmask_bytes(alloc_cids);
  auto off = pool.alloc(size);
  if (!off) return tl::unexpected(off.error());
  auto mask = Cmask::init(kern_bytes(arena, *off, size), base, nr_cids, alloc_cids);
  if (!mask) {
    (void)pool.free(*off);  // handed out a moment ago: freeing it cannot fail
    return tl::unexpected(mask.error());
  }
  return ArenaCmask{*off, *mask};
}

Result<SetCmaskScratch> SetCmaskScratch::create(Arena& arena, Pool& pool, const CidTable& table) {
  SetCmaskScratch s(arena, pool, table);
  s.offsets_.assign(table.nr_cpu_ids(), 0);
  for (std::uint32_t cpu = 0; cpu < table.nr_cpu_ids(); ++cpu) {
    if (!table.cpu_to_cid(cpu)) continue;  // a hole in the possible set
    auto m = alloc_arena_cmask(arena, pool, 0, table.nr_cids(), table.nr_cids());
    if (!m) {
      return make_error(m.error().code,
                        fmt::format("set_cmask scratch for CPU {}: {}", cpu, m.error().message));
    }  // s's destructor returns what was allocated
    s.offsets_[cpu] = m->offset;
  }
  return s;
}

SetCmaskScratch::SetCmaskScratch(SetCmaskScratch&& o) noexcept
    : arena_(o.arena_),
      pool_(o.pool_),
      table_(std::move(o.table_)),
      offsets_(std::move(o.offsets_)) {
  o.offsets_.clear();
}

SetCmaskScratch& SetCmaskScratch::operator=(SetCmaskScratch&& o) noexcept {
  if (this != &o) {
    release();
    arena_ = o.arena_;
    pool_ = o.pool_;
    table_ = std::move(o.table_);
    offsets_ = std::move(o.offsets_);
    o.offsets_.clear();
  }
  return *this;
}

SetCmaskScratch::~SetCmaskScratch() {
  release();
}

void SetCmaskScratch::release() {
  for (std::uint32_t off : offsets_) {
    if (off != 0) (void)pool_->free(off);  // our own allocations: nothing to report
  }
  offsets_.clear();
}

Result<std::uint32_t> SetCmaskScratch::offset(std::uint32_t cpu) const {
  if (offsets_.empty()) {
    return make_error(Errc::invalid_argument,
                      "the set_cmask scratch was released (scheduler disabled)");
  }
  if (cpu >= offsets_.size() || offsets_[cpu] == 0) {
    return make_error(
        Errc::out_of_range,
        fmt::format("CPU {} is not a possible CPU: it has no set_cmask scratch", cpu));
  }
  return offsets_[cpu];
}

Result<std::uint64_t> SetCmaskScratch::build(std::uint32_t cpu, const cpu_set_t& cpus) {
  auto off = offset(cpu);
  if (!off) return tl::unexpected(off.error());
  auto mask = Cmask::attach(kern_bytes(*arena_, *off, cmask_bytes(table_.nr_cids())));
  if (!mask) return tl::unexpected(mask.error());
  if (auto ok = mask->assign_cpu_set(cpus, table_); !ok) return tl::unexpected(ok.error());
  return std::uint64_t{*off};
}

}  // namespace scxkit
