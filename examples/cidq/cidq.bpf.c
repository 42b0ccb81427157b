// SPDX-License-Identifier: GPL-2.0
/* cidq: a cid-form sched_ext scheduler (struct sched_ext_ops_cid) that shows
 * what the kernel hands such a scheduler.
 *
 * Scheduling is one shared FIFO queue, as in fifo. What is new:
 * - the kernel numbers CPUs by topology (cids); ops.init records its whole
 *   cid table (scx_bpf_cpu_to_cid, scx_bpf_cid_to_cpu, scx_bpf_cid_topo) for
 *   the loader to compare with scxkit's CidTable;
 * - a cid-form scheduler must use a BPF arena: the kernel carves one scratch
 *   cmask per CPU from it and builds a task's allowed CPUs there, as cids,
 *   whenever the task enters the scheduler (ops.enable, args->cmask_arena_addr)
 *   or its affinity changes (ops.set_cmask). Each callback appends a record to
 *   a ring in the same arena: the task, the CPU, the cmask's address as the
 *   kernel passed it (a bare 32-bit arena offset on 7.3) and a copy of its
 *   bytes (the scratch is rebuilt on that CPU's next change). The loader reads
 *   the ring from user space and decodes the copies with scxkit's Cmask.
 * ops.exit is the examples' shared callback (examples/common). */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cidq.h"
#include "example_exit.bpf.h"
#include "scxkit/bpf/arena.h"
/* The kernel's own struct scx_cid_topo / scx_cmask, checked against scxkit's
 * layout at compile time. */
#define SCXKIT_CID_TYPES_FROM_VMLINUX
#include "scxkit/bpf/cid_types.h"

char _license[] SEC("license") = "GPL";

/* vmlinux.h's kfunc prototypes are off (their arena type tags clash with
 * scxkit/bpf/arena.h's `__arena`); the sched_ext kfuncs this program calls: */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
void scx_bpf_dsq_insert(struct task_struct* p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
u32 scx_bpf_nr_cids(void) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
s32 scx_bpf_cpu_to_cid(s32 cpu) __ksym;
s32 scx_bpf_cid_to_cpu(s32 cid) __ksym;
void scx_bpf_cid_topo(s32 cid, struct scx_cid_topo* out, size_t out__sz) __ksym;

#define SHARED_DSQ 0

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, CIDQ_ARENA_PAGES);
} arena SEC(".maps");

/* The ring's arena address (user form, as BPF pointers carry it) and the
 * number of records ever started; record n lives in slot n % CIDQ_LOG_SLOTS. */
__u64 ring_addr;
__u64 ring_head;
/* Callbacks that found no ring (allocation failed): the loader reports them. */
__u64 ring_missing;

struct cidq_cid_table cid_table;

SEC("struct_ops.s/cidq_init")
s32 BPF_PROG(cidq_init) {
  const u32 bytes = CIDQ_LOG_SLOTS * sizeof(struct cidq_record);
  void __arena* ring;
  u32 nr_cids = scx_bpf_nr_cids();
  s32 cid, cpu;

  /* Creating a queue and arena pages may sleep: only sleepable init may. */
  ring = bpf_arena_alloc_pages(&arena, NULL, (bytes + 4095) / 4096, -1, 0);
  if (!ring) return -12; /* ENOMEM */
  ring_addr = (u64)ring;

  cid_table.nr_cids = nr_cids;
  cid_table.nr_cpu_ids = scx_bpf_nr_cpu_ids();
  bpf_for(cpu, 0, CIDQ_MAX_CPUS) cid_table.cpu_to_cid[cpu] = -1; /* CPUs without a cid */
  bpf_for(cid, 0, nr_cids) {
    struct scx_cid_topo t;

    if (cid >= CIDQ_MAX_CPUS) break;
    /* Only cids are walked: asking cpu_to_cid about a CPU that is not
     * possible is an error that ends the scheduler. */
    cpu = scx_bpf_cid_to_cpu(cid);
    cid_table.cid_to_cpu[cid] = cpu;
    if (cpu >= 0 && cpu < CIDQ_MAX_CPUS) cid_table.cpu_to_cid[cpu] = scx_bpf_cpu_to_cid(cpu);
    scx_bpf_cid_topo(cid, &t, sizeof(t));
    cid_table.topo[cid] = (struct cidq_topo){
        .core_cid = t.core_cid,
        .core_idx = t.core_idx,
        .llc_cid = t.llc_cid,
        .llc_idx = t.llc_idx,
        .node_cid = t.node_cid,
        .node_idx = t.node_idx,
        .shard_cid = t.shard_cid,
        .shard_idx = t.shard_idx,
    };
  }
  cid_table.ready = 1;
  return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

/* Appends what the kernel handed over for `p`: `addr` exactly as passed. */
static void record(u32 kind, struct task_struct* p, u64 addr) {
  const struct scx_cmask __arena* m = (const struct scx_cmask __arena*)addr;
  const u64 __arena* src = (const u64 __arena*)m;
  struct cidq_record __arena* r;
  u32 words, i;
  u64 n;

  if (!ring_addr) {
    __sync_fetch_and_add(&ring_missing, 1);
    return;
  }
  n = __sync_fetch_and_add(&ring_head, 1);
  r = (struct cidq_record __arena*)ring_addr + n % CIDQ_LOG_SLOTS;
  r->kind = kind;
  r->pid = p->pid;
  r->cpu = bpf_get_smp_processor_id();
  r->addr = addr;
  words = m->alloc_words;
  if (words > CIDQ_MAX_WORDS) words = 0; /* too big to copy; the loader says so */
  r->words = words;
  r->cmask[0] = src[0];
  r->cmask[1] = src[1];
  for (i = 0; i < CIDQ_MAX_WORDS && i < words; i++) r->cmask[2 + i] = src[2 + i];
  /* Complete: the loader reads seq first and the rest only if it matches. */
  asm volatile("" ::: "memory");
  r->seq = n + 1;
}

SEC("struct_ops/cidq_enable")
void BPF_PROG(cidq_enable, struct task_struct* p, struct scx_enable_args* args) {
  scxkit_arena_use(arena);
  record(CIDQ_ENABLE, p, args->cmask_arena_addr);
}

/* The kernel passes `const struct scx_cmask __arena *`; BPF_PROG's casts
 * cannot name that address space, so the address arrives as a u64. */
SEC("struct_ops/cidq_set_cmask")
void BPF_PROG(cidq_set_cmask, struct task_struct* p, u64 cmask) {
  scxkit_arena_use(arena);
  record(CIDQ_SET_CMASK, p, cmask);
}

SEC("struct_ops/cidq_enqueue")
void BPF_PROG(cidq_enqueue, struct task_struct* p, u64 enq_flags) {
  scx_bpf_dsq_insert(p, SHARED_DSQ, SCX_SLICE_DFL, enq_flags);
}

SEC("struct_ops/cidq_dispatch")
void BPF_PROG(cidq_dispatch, s32 cid, struct task_struct* prev) {
  scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

SEC(".struct_ops.link")
struct sched_ext_ops_cid cidq_ops = {
    .init = (void*)cidq_init,
    .enable = (void*)cidq_enable,
    .set_cmask = (void*)cidq_set_cmask,
    .enqueue = (void*)cidq_enqueue,
    .dispatch = (void*)cidq_dispatch,
    .exit = (void*)example_exit,
    .name = "cidq",
};
