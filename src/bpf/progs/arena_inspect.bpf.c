// SPDX-License-Identifier: GPL-2.0
/* Looking inside a kernel BPF arena without changing it. The loader replaces
 * `arena` with the arena to inspect (bpf_map__reuse_fd) before load.
 *
 * arena_layout reads the arena's fixed user address range and kernel view
 * base from the kernel's struct bpf_arena (vmlinux.h types are CO-RE
 * relocated, so field moves between kernels are followed). arena_probe_pages tells which pages are
 * backed by reading one byte of each through the kernel view with bpf_probe_read_kernel(): an
 * unbacked page fails to read and is left alone, where a touch through a user mapping would
 * allocate it. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "arena_inspect.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1);
} arena SEC(".maps");

/* kernel/bpf/arena.c: kern_vm_start = kern_vm->addr + GUARD_SZ / 2, GUARD_SZ
 * being 64 KiB (the reach of a 16-bit instruction offset) on 4 KiB pages. */
#define HALF_GUARD (32 * 1024)
#define PAGE_SHIFT 12

/* Bit i: page probe_first + i is backed. C++ clears it before a run and reads
 * it after, through the skeleton's mapping of .bss. */
unsigned char present_bits[SCXKIT_PROBE_CHUNK_PAGES / 8];

/* The run's arguments, where the bpf_loop callback can see them. */
__u64 probe_base;
__u32 probe_first;
__u32 probe_present;

SEC("syscall")
int arena_layout(struct scxkit_arena_layout* out) {
  struct bpf_arena* a = (struct bpf_arena*)&arena;
  /* Direct reads: the verifier types a map pointer as its kernel struct. */
  out->user_vm_start = a->user_vm_start;
  out->user_vm_end = a->user_vm_end;
  out->kern_vm_start = (__u64)a->kern_vm->addr + HALF_GUARD;
  return 0;
}

static long probe_one(__u32 i, void* ctx) {
  char byte;
  __u64 kaddr;

  i &= SCXKIT_PROBE_CHUNK_PAGES - 1; /* the count is capped; this tells the verifier */
  kaddr = probe_base + ((__u64)(probe_first + i) << PAGE_SHIFT);
  if (bpf_probe_read_kernel(&byte, 1, (void*)kaddr) == 0) {
    present_bits[i >> 3] |= 1 << (i & 7);
    probe_present++;
  }
  return 0;
}

SEC("syscall")
int arena_probe_pages(struct scxkit_arena_probe* args) {
  if (args->count > SCXKIT_PROBE_CHUNK_PAGES) return -1;
  probe_base = args->base;
  probe_first = args->first;
  probe_present = 0;
  bpf_loop(args->count, probe_one, 0, 0);
  args->present = probe_present;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
