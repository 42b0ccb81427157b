/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * The sched_ext cid types as the kernel lays them out (kernel/sched/ext/types.h
 * of the 2026 cid series, as in Debian's 7.3 kernel): struct scx_cid_topo and
 * struct scx_cmask. Plain C so
 * BPF C, host C and the C++ side (include/scxkit/topo.hpp, cmask.hpp) agree on
 * one layout.
 *
 * A cmask covers the cids [base, base + nr_cids). bits[] sits on the global
 * 64-cid grid: bits[0] holds cids [base & ~63, (base & ~63) + 64), so two masks
 * combine word by word without shifting. The head bits below base and the tail
 * bits past base + nr_cids in the last used word are padding and stay zero.
 * Storage is alloc_words words; SCXK_CMASK_NR_WORDS(n) words hold n cids at any
 * base.
 *
 * Include after vmlinux.h or after <linux/types.h>: the header needs __s32,
 * __u32 and __u64. A 7.3+ kernel's vmlinux.h already defines both structs;
 * define SCXKIT_CID_TYPES_FROM_VMLINUX before including this header to use
 * those (the assertions below then check the kernel's layout against scxkit's).
 */
#ifndef SCXKIT_BPF_CID_TYPES_H
#define SCXKIT_BPF_CID_TYPES_H

#ifndef SCXKIT_CID_TYPES_FROM_VMLINUX
/* Per-cid topology: for the core, LLC, NUMA node and shard holding the cid,
 * the unit's first cid and its index in walk order. Core, LLC and node are -1
 * in the no-topology tail (CPUs that were not online when the table was
 * built); the tail has shards of its own. */
struct scx_cid_topo {
  __s32 core_cid;
  __s32 core_idx;
  __s32 llc_cid;
  __s32 llc_idx;
  __s32 node_cid;
  __s32 node_idx;
  __s32 shard_cid;
  __s32 shard_idx;
};

struct scx_cmask {
  __u32 base;
  __u32 nr_cids;
  __u32 alloc_words;
  __u64 bits[];
};
#endif

/* SCX_CMASK_NR_WORDS: one extra word absorbs up to 63 head-padding bits; the
 * 64-bit sum keeps nr_cids near U32_MAX from wrapping to a small count. */
#define SCXK_CMASK_NR_WORDS(nr_cids) ((__u32)((((__u64)(nr_cids)) + 63) / 64 + 1))

/* Bytes a cmask able to hold alloc_cids cids at any base occupies. */
#define SCXK_CMASK_BYTES(alloc_cids) \
  (sizeof(struct scx_cmask) + (__u64)SCXK_CMASK_NR_WORDS(alloc_cids) * sizeof(__u64))

_Static_assert(sizeof(struct scx_cid_topo) == 32 &&
                   __builtin_offsetof(struct scx_cid_topo, core_idx) == 4 &&
                   __builtin_offsetof(struct scx_cid_topo, llc_cid) == 8 &&
                   __builtin_offsetof(struct scx_cid_topo, llc_idx) == 12 &&
                   __builtin_offsetof(struct scx_cid_topo, node_cid) == 16 &&
                   __builtin_offsetof(struct scx_cid_topo, node_idx) == 20 &&
                   __builtin_offsetof(struct scx_cid_topo, shard_cid) == 24 &&
                   __builtin_offsetof(struct scx_cid_topo, shard_idx) == 28,
               "scx_cid_topo: core_cid, core_idx, llc_cid, llc_idx, node_cid, node_idx, "
               "shard_cid, shard_idx (s32)");
_Static_assert(__builtin_offsetof(struct scx_cmask, base) == 0 &&
                   __builtin_offsetof(struct scx_cmask, nr_cids) == 4 &&
                   __builtin_offsetof(struct scx_cmask, alloc_words) == 8 &&
                   __builtin_offsetof(struct scx_cmask, bits) == 16,
               "scx_cmask: u32 base, u32 nr_cids, u32 alloc_words, u64 bits[] at 16");
_Static_assert(sizeof(struct scx_cmask) == 16 && _Alignof(struct scx_cmask) == 8,
               "scx_cmask header is 16 bytes, 8-byte aligned");

#endif /* SCXKIT_BPF_CID_TYPES_H */
