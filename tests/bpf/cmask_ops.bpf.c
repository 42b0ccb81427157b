/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * Runs a list of cmask operations with include/scxkit/bpf/cmask.bpf.h on
 * cmasks that user space placed in the arena, so a test can compare every
 * result and every byte with the C++ Cmask doing the same list. Built with
 * the host's vmlinux.h (tests/CMakeLists.txt) and, by the compile test,
 * without it: every operation of the header is used here.
 */
#ifdef CMASK_OPS_WITHOUT_VMLINUX /* the header's other include path, for the compile test */
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#else
#include "vmlinux.h"
#endif
#include <bpf/bpf_helpers.h>

#include "cmask_ops.h"
#include "scxkit/bpf/cmask.bpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, CMASK_OPS_ARENA_PAGES);
} arena SEC(".maps");

static __always_inline __s64 run_one(struct cmask_op __arena* op) {
  scxk_cmask_t* a = (scxk_cmask_t*)op->a;
  scxk_cmask_t* b = (scxk_cmask_t*)op->b;

  switch (op->code) {
    case CMASK_OP_INIT:
      return scxk_cmask_init(a, op->cid, op->nr, op->alloc);
    case CMASK_OP_REFRAME:
      return scxk_cmask_reframe(a, op->cid, op->nr);
    case CMASK_OP_TEST:
      return scxk_cmask_test(op->cid, a);
    case CMASK_OP_SET:
      return __scxk_cmask_set(op->cid, a);
    case CMASK_OP_CLEAR:
      return __scxk_cmask_clear(op->cid, a);
    case CMASK_OP_TEST_AND_SET:
      return __scxk_cmask_test_and_set(op->cid, a);
    case CMASK_OP_TEST_AND_CLEAR:
      return __scxk_cmask_test_and_clear(op->cid, a);
    case CMASK_OP_ATOMIC_SET:
      return scxk_cmask_set(op->cid, a);
    case CMASK_OP_ATOMIC_CLEAR:
      return scxk_cmask_clear(op->cid, a);
    case CMASK_OP_ATOMIC_TEST_AND_SET:
      return scxk_cmask_test_and_set(op->cid, a);
    case CMASK_OP_ATOMIC_TEST_AND_CLEAR:
      return scxk_cmask_test_and_clear(op->cid, a);
    case CMASK_OP_ZERO:
      scxk_cmask_zero(a);
      return 0;
    case CMASK_OP_AND:
      return scxk_cmask_and(a, b);
    case CMASK_OP_OR:
      return scxk_cmask_or(a, b);
    case CMASK_OP_ANDNOT:
      return scxk_cmask_andnot(a, b);
    case CMASK_OP_COPY:
      return scxk_cmask_copy(a, b);
    case CMASK_OP_EQUAL:
      return scxk_cmask_equal(a, b);
    case CMASK_OP_SUBSET:
      return scxk_cmask_subset(a, b);
    case CMASK_OP_INTERSECTS:
      return scxk_cmask_intersects(a, b);
    case CMASK_OP_WEIGHT:
      return scxk_cmask_weight(a);
    case CMASK_OP_FIRST_SET:
      return scxk_cmask_first_set(a);
    case CMASK_OP_NEXT_SET:
      return scxk_cmask_next_set(a, op->cid);
    case CMASK_OP_NEXT_SET_WRAP:
      return scxk_cmask_next_set_wrap(a, op->cid);
    case CMASK_OP_SUM_FOR_EACH: {
      __u32 cid;
      __s64 sum = 0;

      scxk_cmask_for_each(cid, a) sum += cid + 1;
      return sum;
    }
  }
  return -SCXK_CMASK_EINVAL;
}

SEC("syscall")
int run_cmask_ops(struct cmask_ops_args* args) {
  struct cmask_op __arena* ops = (struct cmask_op __arena*)args->ops;
  __u32 n = args->nr_ops, i;

  asm volatile("" ::"r"(&arena));
  bpf_for(i, 0, CMASK_OPS_MAX) {
    if (i >= n) break;
    ops[i].result = run_one(&ops[i]);
  }
  return 0;
}

char _license[] SEC("license") = "GPL";
