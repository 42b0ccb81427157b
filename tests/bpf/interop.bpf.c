// SPDX-License-Identifier: GPL-2.0
/* BPF side of the interop tests and of the `scxkit arena show` / `scxkit prog
 * stderr` CLI tests: walks and builds linked lists in an arena C++ shares,
 * allocates tagged pages, and writes to its stderr stream. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "interop.h"
#include "scxkit/bpf/arena.h"
#include "scxkit/bpf/stream.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 1); /* the C++ side hands its own arena over before load */
} arena SEC(".maps");

struct walk {
  __u32 off;
  __u32 count;
  __u64 sum;
};

static long walk_step(__u32 i, struct walk* w) {
  struct test_node __arena* n = scxkit_arena_ptr(struct test_node, w->off);

  if (!n) return 1;
  w->sum = TEST_CHECKSUM_STEP(w->sum, n->value);
  w->count++;
  w->off = n->next;
  return 0;
}

SEC("syscall")
int list_sum(struct test_list_args* args) {
  struct walk w = {.off = args->head};

  scxkit_arena_use(arena);
  bpf_loop(TEST_MAX_NODES, walk_step, &w, 0);
  args->count = w.count;
  args->sum = w.sum;
  return 0;
}

struct build {
  __u32 base; /* arena offset of the first node */
  __u32 count;
  __u64 seed;
};

static long build_step(__u32 i, struct build* b) {
  struct test_node __arena* n =
      scxkit_arena_ptr(struct test_node, b->base + i * sizeof(struct test_node));

  n->value = b->seed + 7 * (__u64)i;
  n->next = i + 1 < b->count ? scxkit_arena_off(n + 1) : 0;
  return 0;
}

SEC("syscall")
int list_build(struct test_list_args* args) {
  __u32 count = args->count;
  __u32 pages;
  void __arena* p;
  struct build b;

  args->first_page = 0;
  if (count == 0 || count > TEST_MAX_NODES) return -1;
  pages = (TEST_FIRST_NODE_OFFSET + count * sizeof(struct test_node) + 4095) / 4096;
  p = bpf_arena_alloc_pages(&arena, NULL, pages, -1, 0);
  if (!p) {
    scxkit_stream_printk(SCXKIT_STDERR, "list_build: no room for %u pages\n", pages);
    return -1;
  }
  b.base = scxkit_arena_off(p) + TEST_FIRST_NODE_OFFSET;
  b.count = count;
  b.seed = args->seed;
  bpf_loop(count, build_step, &b, 0);
  args->head = b.base;
  args->first_page = (__u64)p;
  scxkit_stream_printk(SCXKIT_STDERR, "list_build: %u nodes in %u pages at offset 0x%x\n", count,
                       pages, b.base);
  return 0;
}

SEC("syscall")
int page_tag(struct test_tag_args* args) {
  __u64 __arena* p = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);

  args->addr = (__u64)p;
  if (p) *p = args->tag;
  return 0;
}

SEC("syscall")
int say(void* ctx) {
  return scxkit_stream_printk(SCXKIT_STDOUT, "hello from BPF stdout\n");
}

char LICENSE[] SEC("license") = "GPL";
