/* Shared by tests/bpf/interop.bpf.c and the C++ tests that run it: a linked
 * list in a BPF arena whose links are 32-bit arena pointers, u32 offsets in
 * BPF and scxkit::ArenaPtr<T> in C++. */
#ifndef SCXKIT_TEST_INTEROP_H
#define SCXKIT_TEST_INTEROP_H

#include "scxkit/bpf/arena.h"

#ifdef __bpf__
typedef __u64 test_u64;
typedef __u32 test_u32;
#else
#include <cstdint>
typedef std::uint64_t test_u64;
typedef std::uint32_t test_u32;
#endif

struct test_node {
  SCXKIT_ARENA_PTR(struct test_node) next;
  test_u32 pad;
  test_u64 value;
};

/* The checksum both sides compute over a walk: order matters. */
#define TEST_CHECKSUM_STEP(sum, value) ((sum)*31 + (value))

struct test_list_args {
  test_u32 head;       /* list_sum: in; list_build: out (offset of the first node) */
  test_u32 count;      /* list_sum: out, nodes walked; list_build: in, nodes to build */
  test_u64 sum;        /* list_sum: out */
  test_u64 seed;       /* list_build: in; node i (from 0) holds seed + 7 * i */
  test_u64 first_page; /* list_build: out, user address of the pages it allocated, 0 on failure */
};

struct test_tag_args {
  test_u64 tag;  /* in: written at the start of the page */
  test_u64 addr; /* out: the page's user address, 0 when allocation failed */
};

/* Nodes are never placed at offset 0 of their pages: offset 0 is NULL. */
#define TEST_FIRST_NODE_OFFSET 64
#define TEST_MAX_NODES 100000

#endif
