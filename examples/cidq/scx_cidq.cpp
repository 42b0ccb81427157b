// scx_cidq: loads the cidq scheduler (cid form, cidq.bpf.c), attaches it
// through a struct_ops link and prints every cmask the kernel hands it —
// task, CPU, arena address, cids and the CPUs they stand for, decoded with
// scxkit's Cmask and CidTable from the arena as this process maps it — until
// SIGINT/SIGTERM or a kick-out; then detaches and prints the kernel's exit
// record.
//
// --check-cids compares the kernel's cid table with scxkit's for this
// machine; --check-affinity N starts N tasks, changes their CPUs and checks
// every cmask the kernel built for them. Both print "0 mismatches" when the
// kernel and scxkit agree; the exit status is then 0.
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>

#include "cidq.h"
#include "cidq.skel.h"
#include "cidq_checks.hpp"
#include "cidq_ring.hpp"
#include "scxkit/topo.hpp"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

struct Options {
  std::uint32_t shard_size = 0;
  bool check_cids = false;
  unsigned check_tasks = 0;
  scx_cidq::AffinityOptions affinity;
};

std::string describe(scx_cidq::CmaskEvent& e, const scxkit::CidTable& table) {
  std::string head =
      fmt::format("{} pid {} on CPU {}: cmask at {:#x}", e.kind_name(), e.pid, e.cpu, e.addr);
  auto mask = e.mask();
  if (!mask) return head + ": " + mask.error().message;
  auto cpus = mask->to_cpulist(table);
  return fmt::format("{} [{}, {}) cids {} = CPUs {}", head, mask->base(), mask->end(),
                     mask->to_cidlist(), cpus ? *cpus : cpus.error().message);
}

// Prints records until asked to stop or kicked out.
void watch(scx_cidq::Ring& ring, const scxkit::CidTable& table, unsigned int& exit_kind) {
  while (g_stop == 0 &&
         std::atomic_ref<unsigned int>(exit_kind).load(std::memory_order_acquire) == 0) {
    for (scx_cidq::CmaskEvent& e : ring.drain()) fmt::print("scx_cidq: {}\n", describe(e, table));
    std::fflush(stdout);
    usleep(50 * 1000);
  }
}

// Runs the checks asked for; returns the number of failures.
unsigned run_checks(const Options& o, const cidq_cid_table& kernel, scx_cidq::Ring& ring,
                    const scx_cidq::ArenaMapping& arena, const scxkit::CidTable& table,
                    const scxkit::MachineTopology& machine) {
  unsigned failures = 0;
  if (o.check_cids) {
    const unsigned bad = scx_cidq::compare_cid_tables(kernel, table);
    fmt::print("scx_cidq: cid table: {} cids, {} shards: {} mismatches\n", table.nr_cids(),
               table.nr_shards(), bad);
    failures += bad;
  }
  if (o.check_tasks > 0) {
    auto r = scx_cidq::check_affinity(ring, arena, table, machine.online, o.affinity);
    if (!r) {
      fmt::print("scx_cidq: affinity check failed: {}\n", r.error().message);
      return failures + 1;
    }
    fmt::print(
        "scx_cidq: affinity: {} tasks, {} cmasks checked ({} enable, {} set_cmask), {} read back "
        "at their arena address ({} rebuilt since), {} records lost: {} mismatches\n",
        r->tasks, r->enable + r->set_cmask, r->enable, r->set_cmask, r->read_back, r->rebuilt,
        ring.lost(), r->mismatches);
    failures += r->mismatches + (ring.lost() > 0 ? 1 : 0);
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"cidq: a cid-form sched_ext scheduler that shows the cmasks the kernel builds"};
  app.add_option("--shard-size", o.shard_size,
                 "ops.cid_shard_size: cids per shard (default: the kernel's, 24)");
  app.add_flag("--check-cids", o.check_cids,
               "Compare the kernel's cid table with scxkit's for this machine, then detach");
  app.add_option("--check-affinity", o.check_tasks,
                 "Start N tasks, change their CPUs, check every cmask the kernel builds, then "
                 "detach");
  app.add_option("--rounds", o.affinity.rounds, "Affinity changes per task")->capture_default_str();
  app.add_option("--seed", o.affinity.seed, "Seed of the random CPU sets")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.affinity.tasks = o.check_tasks;
  const bool checking = o.check_cids || o.check_tasks > 0;

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // The numbering the kernel will use, from this machine's sysfs.
  auto machine = scxkit::read_host_topology();
  auto table =
      machine ? scxkit::CidTable::build(*machine, o.shard_size) : tl::unexpected(machine.error());
  if (!table) {
    fmt::print(stderr, "scx_cidq: numbering this machine's CPUs failed: {}\n",
               table.error().message);
    return 1;
  }

  cidq* skel = cidq__open();
  if (skel == nullptr) {
    fmt::print(stderr, "scx_cidq: opening the BPF scheduler failed: {}\n", std::strerror(errno));
    return 1;
  }
  skel->struct_ops.cidq_ops->cid_shard_size = o.shard_size;
  if (int err = cidq__load(skel); err != 0) {
    fmt::print(stderr, "scx_cidq: loading the BPF scheduler failed: {}\n", std::strerror(-err));
    cidq__destroy(skel);
    return 1;
  }
  bpf_link* link = bpf_map__attach_struct_ops(skel->maps.cidq_ops);
  if (link == nullptr) {
    fmt::print(stderr, "scx_cidq: attaching failed: {} (is another scheduler attached?)\n",
               std::strerror(errno));
    cidq__destroy(skel);
    return 1;
  }
  fmt::print("scx_cidq: attached\n");
  std::fflush(stdout);

  // ops.init has run: the ring is in the arena, which libbpf mapped here.
  // (libbpf 1.4 reports size 0 for an arena's mapping: it is max_entries pages.)
  std::size_t reported = 0;
  auto* arena_base = static_cast<std::byte*>(bpf_map__initial_value(skel->maps.arena, &reported));
  const std::size_t arena_size =
      std::size_t{bpf_map__max_entries(skel->maps.arena)} * static_cast<std::size_t>(getpagesize());
  const scx_cidq::ArenaMapping arena(arena_base, arena_size);
  auto slots = arena.at(skel->bss->ring_addr, CIDQ_LOG_SLOTS * sizeof(cidq_record));
  unsigned failures = 0;
  if (!slots) {
    fmt::print("scx_cidq: the event ring is not in the arena: {}\n", slots.error().message);
    failures = 1;
  } else {
    scx_cidq::Ring ring(reinterpret_cast<cidq_record*>(slots->data()), &skel->bss->ring_head);
    if (checking) {
      failures = run_checks(o, skel->bss->cid_table, ring, arena, *table, *machine);
    } else {
      watch(ring, *table, skel->bss->exit_record.kind);
    }
  }

  const auto kind = [&] {
    return std::atomic_ref<unsigned int>(skel->bss->exit_record.kind)
        .load(std::memory_order_acquire);
  };
  const bool kicked_out = kind() != 0;
  bpf_link__destroy(link);  // ops.exit has run once this returns
  const auto& r = skel->bss->exit_record;
  fmt::print("scx_cidq: exit kind {} ({}) code {} reason '{}' message '{}'\n", kind(),
             kicked_out ? "kicked out by the kernel" : "detached on request", r.exit_code, r.reason,
             r.msg);
  if (skel->bss->ring_missing != 0) {
    fmt::print("scx_cidq: {} callbacks found no event ring\n", skel->bss->ring_missing);
    ++failures;
  }
  cidq__destroy(skel);
  if (kicked_out) return 2;
  return failures == 0 ? 0 : 1;
}
