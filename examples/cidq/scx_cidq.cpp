// scx_cidq: loads the cidq scheduler (cid form, cidq.bpf.c) on the shared
// example loader (examples/common) and prints every cmask the kernel hands
// it — task, CPU, arena address, cids and the CPUs they stand for, decoded
// with scxkit's Cmask and CidTable from the arena as this process maps it —
// until SIGINT/SIGTERM or a kick-out.
//
// --check N instead compares the kernel's cid table with scxkit's for this
// machine, then (N > 0) starts N tasks, changes their CPUs and checks every
// cmask the kernel built for them; it prints "0 mismatches" for each when the
// kernel and scxkit agree, detaches and exits 0 (1 on any difference).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <optional>

#include "cidq.h"
#include "cidq_checks.hpp"
#include "cidq_ring.hpp"
#include "loader.hpp"
#include "scxkit/topo.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "cidq.skel.h"

namespace {

std::string describe(scx_cidq::CmaskEvent& e, const scxkit::CidTable& table) {
  std::string head =
      fmt::format("{} pid {} on CPU {}: cmask at {:#x}", e.kind_name(), e.pid, e.cpu, e.addr);
  auto mask = e.mask();
  if (!mask) return head + ": " + mask.error().message;
  auto cpus = mask->to_cpulist(table);
  return fmt::format("{} [{}, {}) cids {} = CPUs {}", head, mask->base(), mask->end(),
                     mask->to_cidlist(), cpus ? *cpus : cpus.error().message);
}

// What the loader does while attached: the ring, found once ops.init has run.
class Session {
 public:
  Session(const scxkit::MachineTopology& machine, const scxkit::CidTable& table,
          std::optional<scx_cidq::AffinityOptions> check)
      : machine_(machine), table_(table), check_(check) {}

  void tick(cidq& skel) {
    if (done_) return;
    if (!ring_ && !open_ring(skel)) return finish(1);
    if (!check_) {
      for (scx_cidq::CmaskEvent& e : ring_->drain())
        fmt::print("scx_cidq: {}\n", describe(e, table_));
      if (ring_->lost() > reported_lost_) {
        fmt::print("scx_cidq: {} records lost so far (the ring holds {})\n", ring_->lost(),
                   CIDQ_LOG_SLOTS);
        reported_lost_ = ring_->lost();
      }
      std::fflush(stdout);
      return;
    }
    finish(run_checks(skel));
  }
  unsigned failures() const { return failures_; }

 private:
  bool open_ring(cidq& skel) {
    // libbpf mapped the arena here at load; it reports size 0 for it, so the
    // size is max_entries pages.
    std::size_t reported = 0;
    auto* base = static_cast<std::byte*>(bpf_map__initial_value(skel.maps.arena, &reported));
    arena_.emplace(base, std::size_t{bpf_map__max_entries(skel.maps.arena)} *
                             static_cast<std::size_t>(getpagesize()));
    auto slots = arena_->at(skel.bss->ring_addr, CIDQ_LOG_SLOTS * sizeof(cidq_record));
    if (!slots) {
      fmt::print("scx_cidq: the event ring is not in the arena: {}\n", slots.error().message);
      return false;
    }
    ring_.emplace(reinterpret_cast<cidq_record*>(slots->data()), &skel.bss->ring_head);
    return true;
  }

  unsigned run_checks(cidq& skel) {
    const unsigned bad = scx_cidq::compare_cid_tables(skel.bss->cid_table, table_);
    fmt::print("scx_cidq: cid table: {} cids, {} shards: {} mismatches\n", table_.nr_cids(),
               table_.nr_shards(), bad);
    unsigned failures = bad;
    if (check_->tasks > 0) {
      auto r = scx_cidq::check_affinity(*ring_, *arena_, table_, machine_.online, *check_);
      if (!r) {
        fmt::print("scx_cidq: affinity check failed: {}\n", r.error().message);
        return failures + 1;
      }
      fmt::print(
          "scx_cidq: affinity: {} tasks, {} cmasks checked ({} enable, {} set_cmask), {} read "
          "back at their arena address ({} rebuilt since), {} records lost: {} mismatches\n",
          r->tasks, r->enable + r->set_cmask, r->enable, r->set_cmask, r->read_back, r->rebuilt,
          ring_->lost(), r->mismatches);
      failures += r->mismatches + (ring_->lost() > 0 ? 1 : 0);
    }
    if (skel.bss->ring_missing != 0) {
      fmt::print("scx_cidq: {} callbacks found no event ring\n", skel.bss->ring_missing);
      ++failures;
    }
    return failures;
  }

  // Done: detach as if asked to stop.
  void finish(unsigned failures) {
    failures_ = failures;
    done_ = true;
    raise(SIGTERM);
  }

  const scxkit::MachineTopology& machine_;
  const scxkit::CidTable& table_;
  std::optional<scx_cidq::AffinityOptions> check_;
  std::optional<scx_cidq::ArenaMapping> arena_;
  std::optional<scx_cidq::Ring> ring_;
  bool done_ = false;
  unsigned failures_ = 0;
  std::uint64_t reported_lost_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const scx_example::Options o(
      "scx_cidq", argc, argv,
      {{"--shard-size", "N (ops.cid_shard_size; default: the kernel's, 24)"},
       {"--check", "TASKS (compare the cid table, then check the cmasks of TASKS tasks)"},
       {"--rounds", "R (affinity changes per task, default 4)"},
       {"--seed", "S (of the random CPU sets, default 1)"}});
  const auto shard_size = static_cast<std::uint32_t>(o.number("--shard-size", 0));
  std::optional<scx_cidq::AffinityOptions> check;
  if (o.has("--check")) {
    check = scx_cidq::AffinityOptions{.tasks = static_cast<unsigned>(o.number("--check", 0)),
                                      .rounds = static_cast<unsigned>(o.number("--rounds", 4)),
                                      .seed = static_cast<unsigned>(o.number("--seed", 1))};
  }

  // The numbering the kernel will use, from this machine's sysfs.
  auto machine = scxkit::read_host_topology();
  auto table =
      machine ? scxkit::CidTable::build(*machine, shard_size) : tl::unexpected(machine.error());
  if (!table) {
    fmt::print(stderr, "scx_cidq: numbering this machine's CPUs failed: {}\n",
               table.error().message);
    return scx_example::kFailed;
  }

  Session session(*machine, *table, check);
  const int code = scx_example::run<cidq>(
      {.prog = "scx_cidq",
       .open = cidq__open,
       .load = cidq__load,
       .destroy = cidq__destroy,
       .ops = [](cidq* s) { return s->maps.cidq_ops; },
       .configure = [&](cidq& s) { s.struct_ops.cidq_ops->cid_shard_size = shard_size; },
       .while_attached = [&](cidq& s, std::chrono::milliseconds) { session.tick(s); }});
  if (code == scx_example::kDetachedOnRequest && session.failures() > 0) {
    return scx_example::kFailed;
  }
  return code;
}
