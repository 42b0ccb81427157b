// SPDX-License-Identifier: GPL-2.0
/* A linked list in a BPF arena, shared with C++ (main.cpp).
 *
 * push() allocates nodes from arena pages and puts them at the front of the
 * list; sum() walks the whole list, whoever built the nodes, and reports on
 * its stderr stream; give_page() hands C++ a page of its own. C++ runs them
 * with BPF_PROG_TEST_RUN (they are SEC("syscall") programs). */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "list.h"
#include "scxkit/bpf/arena.h"
#include "scxkit/bpf/stream.h"

/* The arena: 64 pages (256 KiB). libbpf creates and maps it when the
 * skeleton loads; C++ sees it at the same address. */
struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 64);
} arena SEC(".maps");

/* The first node as an arena offset (0: empty list). C++ reads and writes it
 * through the skeleton (skel->bss->head). */
__u32 head;

/* Nodes are cut from the current page, [bump, bump_end). */
__u32 bump, bump_end;

static struct list_node __arena* new_node(void) {
  struct list_node __arena* n;

  if (bump + sizeof(*n) > bump_end) {
    void __arena* page = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);

    if (!page) return NULL;
    /* Skip the page's first slot: offset 0 would read as NULL. */
    bump = scxkit_arena_off(page) + sizeof(*n);
    bump_end = scxkit_arena_off(page) + 4096;
  }
  n = scxkit_arena_ptr(struct list_node, bump);
  bump += sizeof(*n);
  return n;
}

SEC("syscall")
int push(struct list_push* args) {
  struct list_node __arena* n = new_node();

  if (!n) return -12; /* ENOMEM: the arena is full */
  n->value = args->value;
  n->next = head;
  head = scxkit_arena_off(n);
  return 0;
}

struct walk {
  __u32 off;
  __u32 count;
  __u64 sum;
};

static long step(__u32 i, struct walk* w) {
  struct list_node __arena* n = scxkit_arena_ptr(struct list_node, w->off);

  if (!n) return 1; /* end of the list: stop the loop */
  w->sum += n->value;
  w->count++;
  w->off = n->next;
  return 0;
}

SEC("syscall")
int sum(struct list_sum* out) {
  struct walk w = {.off = head};

  scxkit_arena_use(arena); /* this program only follows pointers: name the arena */
  bpf_loop(1 << 16, step, &w, 0);
  out->sum = w.sum;
  out->count = w.count;
  scxkit_stream_printk(SCXKIT_STDERR, "sum: %llu over %u nodes\n", w.sum, w.count);
  return 0;
}

SEC("syscall")
int give_page(struct list_page* out) {
  out->addr = (__u64)bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
