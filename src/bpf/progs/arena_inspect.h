/* The argument blocks of scxkit's arena inspection programs, shared by the BPF
 * side (arena_inspect.bpf.c) and the C++ side that runs them with
 * BPF_PROG_TEST_RUN. The kernel copies a block back after the run. */
#ifndef SCXKIT_BPF_ARENA_INSPECT_H
#define SCXKIT_BPF_ARENA_INSPECT_H

#include "arena_ops.h" /* scxkit_u64, scxkit_u32 */

/* Pages one run of arena_probe_pages covers: its bitmap is 32 KiB of .bss. */
#define SCXKIT_PROBE_CHUNK_PAGES (256 * 1024)

struct scxkit_arena_layout {
  scxkit_u64 user_vm_start; /* out: where every user mapping of the arena starts */
  scxkit_u64 user_vm_end;
  scxkit_u64 kern_vm_start; /* out: the kernel view's base (arena offset 0) */
};

struct scxkit_arena_probe {
  scxkit_u64 base;    /* in: kernel address of the arena's page 0 */
  scxkit_u32 first;   /* in: first page */
  scxkit_u32 count;   /* in: pages, at most SCXKIT_PROBE_CHUNK_PAGES */
  scxkit_u32 present; /* out: how many of them have a page */
  scxkit_u32 pad;
};

#endif
