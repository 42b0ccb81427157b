/* The argument block of scxkit's arena page programs, shared by the BPF side
 * (arena_ops.bpf.c) and the C++ side that runs them with BPF_PROG_TEST_RUN.
 * The kernel copies the block back after the run, so results travel in it. */
#ifndef SCXKIT_BPF_ARENA_OPS_H
#define SCXKIT_BPF_ARENA_OPS_H

#ifdef __bpf__
typedef unsigned long long scxkit_u64;
typedef unsigned int scxkit_u32;
typedef int scxkit_s32;
#else
#include <stdint.h>
typedef uint64_t scxkit_u64;
typedef uint32_t scxkit_u32;
typedef int32_t scxkit_s32;
#endif

struct scxkit_arena_op {
  scxkit_u64 addr;  /* in: user-form address or 0; out (alloc): the first page, 0 on failure */
  scxkit_u32 count; /* in: pages */
  scxkit_s32 node;  /* in: NUMA node, -1 for any */
  scxkit_s32 ret;   /* out (reserve): the kfunc's return value */
  scxkit_u32 pad;
};

#endif
