/* What the BPF program (list.bpf.c) and the C++ program (main.cpp) share: the
 * list node living in the arena, and the argument blocks of the programs C++
 * runs. Links are 32-bit arena offsets: `__u32` in BPF, ArenaPtr in C++. */
#ifndef ARENA_LIST_H
#define ARENA_LIST_H

#include "scxkit/bpf/arena.h"

#ifndef __bpf__
#include <linux/types.h> /* __u32, __u64 as in BPF C */
#endif

struct list_node {
  SCXKIT_ARENA_PTR(struct list_node) next;
  __u32 pad;
  __u64 value;
};

struct list_push {
  __u64 value; /* in */
};

struct list_sum {
  __u64 sum;   /* out */
  __u32 count; /* out */
  __u32 pad;
};

struct list_page {
  __u64 addr; /* out: user address of a fresh arena page for C++, 0 on failure */
};

#endif
