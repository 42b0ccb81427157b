// SPDX-License-Identifier: GPL-2.0
/* Page operations on a BPF arena, run from C++ with BPF_PROG_TEST_RUN so that
 * C++ and BPF programs share the kernel's one page allocator: a C++ allocation
 * and a BPF allocation can never hand out the same page. The loader replaces
 * `arena` with the caller's arena map (bpf_map__reuse_fd) before load. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "arena_ops.h"
#include "scxkit/bpf/arena.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
} arena SEC(".maps");

SEC("syscall")
int arena_alloc(struct scxkit_arena_op* op) {
  void __arena* p = bpf_arena_alloc_pages(&arena, (void __arena*)op->addr, op->count, op->node, 0);
  op->addr = (__u64)p;
  return 0;
}

SEC("syscall")
int arena_free(struct scxkit_arena_op* op) {
  bpf_arena_free_pages(&arena, (void __arena*)op->addr, op->count);
  return 0;
}

SEC("syscall")
int arena_reserve(struct scxkit_arena_op* op) {
  if (!bpf_ksym_exists(bpf_arena_reserve_pages)) {
    op->ret = -95; /* EOPNOTSUPP: the kernel predates reserve_pages */
    return 0;
  }
  op->ret = bpf_arena_reserve_pages(&arena, (void __arena*)op->addr, op->count);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
