/* What the cidq scheduler's BPF side and its loader share. Plain C types:
 * BPF C sees it after vmlinux.h, C++ after <cstdint>. */
#pragma once

#define CIDQ_MAX_CPUS 512   /* entries of the kernel's cid table recorded at init */
#define CIDQ_MAX_WORDS 129  /* SCX_CMASK_NR_WORDS(8192): a cmask of every cid the kernel allows */
#define CIDQ_LOG_SLOTS 4096 /* records in the event ring */
#define CIDQ_ARENA_PAGES (1 << 14)

enum cidq_event_kind {
  CIDQ_ENABLE = 1,    /* ops.enable(p, args): args->cmask_arena_addr */
  CIDQ_SET_CMASK = 2, /* ops.set_cmask(p, cmask) */
};

/* One cmask the kernel handed over, as the BPF side saw it. */
struct cidq_record {
  unsigned long long seq; /* ring index + 1, stored last: the record is complete */
  unsigned int kind;      /* enum cidq_event_kind */
  int pid;
  int cpu;                 /* the CPU the callback ran on: whose scratch cmask it was */
  unsigned int words;      /* words of bits copied; 0 if the cmask exceeded CIDQ_MAX_WORDS */
  unsigned long long addr; /* the arena address the kernel passed */
  /* The cmask's bytes, header (base, nr_cids, alloc_words, padding) then bits:
   * the struct scx_cmask layout, copied word for word. */
  unsigned long long cmask[2 + CIDQ_MAX_WORDS];
};

/* The kernel's cid numbering, read in ops.init through scx_bpf_nr_cids(),
 * scx_bpf_cpu_to_cid(), scx_bpf_cid_to_cpu() and scx_bpf_cid_topo(). */
struct cidq_topo {
  int core_cid, core_idx, llc_cid, llc_idx, node_cid, node_idx, shard_cid, shard_idx;
};
struct cidq_cid_table {
  unsigned int nr_cids;
  unsigned int nr_cpu_ids;
  unsigned int ready;                   /* set once the table below is filled */
  int cpu_to_cid[CIDQ_MAX_CPUS];        /* by CPU; negative: not a possible CPU */
  int cid_to_cpu[CIDQ_MAX_CPUS];        /* by cid */
  struct cidq_topo topo[CIDQ_MAX_CPUS]; /* by cid */
};
