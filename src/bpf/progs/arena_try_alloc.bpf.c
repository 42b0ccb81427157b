// SPDX-License-Identifier: GPL-2.0
/* bpf_arena_alloc_pages from a program that must not sleep, for
 * Arena::try_alloc_pages on the kernel backend. Loading it is the probe: a
 * kernel whose arena allocator may sleep lets only sleepable programs call
 * it, and its verifier refuses this one; a kernel that has a non-sleeping
 * arena allocator accepts it (and gives a non-sleepable caller that path).
 * Run with BPF_PROG_TEST_RUN, a raw_tp program runs under RCU, unable to
 * sleep; its arguments are the context, its result a global. The loader
 * replaces `arena` with the caller's arena map before load. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "scxkit/bpf/arena.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
} arena SEC(".maps");

__u64 result; /* the user-form address of the first page, 0 when refused */

/* ctx: addr (user form or 0), count, node. */
SEC("raw_tp")
int arena_try_alloc(__u64* ctx) {
  result =
      (__u64)bpf_arena_alloc_pages(&arena, (void __arena*)ctx[0], (__u32)ctx[1], (int)ctx[2], 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
