/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* Shared by cmask_ops.bpf.c and src/cmask/cmask_bpf_test.cpp. */
#ifndef SCXKIT_TESTS_CMASK_OPS_H
#define SCXKIT_TESTS_CMASK_OPS_H

#define CMASK_OPS_ARENA_PAGES 64
#define CMASK_OPS_MAX 512

enum cmask_op_code {
  CMASK_OP_INIT,    /* a, cid = base, nr, alloc */
  CMASK_OP_REFRAME, /* a, cid = base, nr */
  CMASK_OP_TEST,
  CMASK_OP_SET,
  CMASK_OP_CLEAR,
  CMASK_OP_TEST_AND_SET,
  CMASK_OP_TEST_AND_CLEAR,
  CMASK_OP_ATOMIC_SET,
  CMASK_OP_ATOMIC_CLEAR,
  CMASK_OP_ATOMIC_TEST_AND_SET,
  CMASK_OP_ATOMIC_TEST_AND_CLEAR,
  CMASK_OP_ZERO,
  CMASK_OP_AND,
  CMASK_OP_OR,
  CMASK_OP_ANDNOT,
  CMASK_OP_COPY,
  CMASK_OP_EQUAL,
  CMASK_OP_SUBSET,
  CMASK_OP_INTERSECTS,
  CMASK_OP_WEIGHT,
  CMASK_OP_FIRST_SET,
  CMASK_OP_NEXT_SET,
  CMASK_OP_NEXT_SET_WRAP,
  CMASK_OP_SUM_FOR_EACH, /* sum of (cid + 1) over the set cids */
  CMASK_OP_NR_CODES,
};

/* One operation; a and b are arena addresses of cmasks (user form). */
struct cmask_op {
  __u32 code;
  __u32 cid;
  __u32 nr;
  __u32 alloc;
  __u64 a;
  __u64 b;
  __s64 result;
};

/* The program's context: an arena address of nr_ops operations. */
struct cmask_ops_args {
  __u64 ops;
  __u32 nr_ops;
  __u32 pad;
};

#endif
