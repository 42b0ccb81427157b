/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * cmask operations for BPF C, over struct scx_cmask __arena * (cid_types.h).
 * Same layout and the same semantics as scxkit's C++ Cmask (cmask.hpp):
 * - single-cid calls outside the window return -SCXK_CMASK_ERANGE (test: false);
 * - and/or/andnot/copy change only dst bits inside the overlap of the windows
 *   and return -SCXK_CMASK_EINVAL for disjoint non-empty windows;
 * - subset/equal/intersects compare sets of cids, whatever the windows.
 * Names carry an scxk_ prefix so this header lives beside the kernel's own
 * scx/cid.bpf.h. Loops are bounded by SCXK_CMASK_MAX_WORDS (8192 cids).
 *
 * Include after vmlinux.h (or <linux/types.h>, <linux/bpf.h> and <stdbool.h>)
 * and <bpf/bpf_helpers.h>. Build: clang-19 -O2 -g -target bpf -mcpu=v3.
 */
#ifndef SCXKIT_BPF_CMASK_BPF_H
#define SCXKIT_BPF_CMASK_BPF_H

#include "cid_types.h"

#ifndef __arena
#define __arena __attribute__((address_space(1)))
#endif

#ifndef SCXK_CMASK_MAX_WORDS
#define SCXK_CMASK_MAX_WORDS 129 /* SCXK_CMASK_NR_WORDS(8192) */
#endif

/* The x86 JIT rejects fetching OR/AND on arena memory; atomics are CAS loops
 * that give up (-SCXK_CMASK_EBUSY) after this many failed exchanges. */
#define SCXK_CMASK_CAS_TRIES (1U << 23)

enum {
  SCXK_CMASK_EBUSY = 16,
  SCXK_CMASK_EINVAL = 22,
  SCXK_CMASK_ERANGE = 34,
};

#define SCXK_GENMASK_U64(h, l) ((~0ULL << (l)) & (~0ULL >> (63 - (h))))

typedef struct scx_cmask __arena scxk_cmask_t;

static __always_inline __u32 scxk_cmask_end(const scxk_cmask_t* m) {
  return m->base + m->nr_cids;
}

static __always_inline bool scxk_cmask_contains(__u32 cid, const scxk_cmask_t* m) {
  return cid >= m->base && cid < scxk_cmask_end(m);
}

static __always_inline __u64 __arena* __scxk_cmask_word(__u32 cid, const scxk_cmask_t* m) {
  return (__u64 __arena*)&m->bits[cid / 64 - m->base / 64];
}

/* Words the window spans; 0 for an empty window. */
static __always_inline __u32 scxk_cmask_used_words(const scxk_cmask_t* m) {
  if (!m->nr_cids) return 0;
  return ((m->base & 63) + m->nr_cids - 1) / 64 + 1;
}

/* Writes a cmask for window [base, base + nr_cids) in storage for alloc_cids
 * cids (SCXK_CMASK_BYTES(alloc_cids) bytes), all words zeroed. */
static __always_inline int scxk_cmask_init(scxk_cmask_t* m, __u32 base, __u32 nr_cids,
                                           __u32 alloc_cids) {
  __u32 words = SCXK_CMASK_NR_WORDS(alloc_cids), i;

  if (nr_cids > alloc_cids || (__u64)base + nr_cids > 0xffffffffULL || words > SCXK_CMASK_MAX_WORDS)
    return -SCXK_CMASK_EINVAL;
  m->base = base;
  m->nr_cids = nr_cids;
  m->alloc_words = words;
  bpf_for(i, 0, SCXK_CMASK_MAX_WORDS) {
    if (i >= words) break;
    m->bits[i] = 0;
  }
  return 0;
}

/* Moves the window; only its first and last word are zeroed, the cids in
 * between are unspecified until written. */
static __always_inline int scxk_cmask_reframe(scxk_cmask_t* m, __u32 base, __u32 nr_cids) {
  if (SCXK_CMASK_NR_WORDS(nr_cids) > m->alloc_words || (__u64)base + nr_cids > 0xffffffffULL)
    return -SCXK_CMASK_EINVAL;
  if (nr_cids) {
    m->bits[0] = 0;
    m->bits[((base & 63) + nr_cids - 1) / 64] = 0;
  }
  m->base = base;
  m->nr_cids = nr_cids;
  return 0;
}

static __always_inline bool scxk_cmask_test(__u32 cid, const scxk_cmask_t* m) {
  if (!scxk_cmask_contains(cid, m)) return false;
  return (*__scxk_cmask_word(cid, m) >> (cid & 63)) & 1;
}

/* Non-atomic update of one cid: the previous value (0/1), or
 * -SCXK_CMASK_ERANGE outside the window. */
static __always_inline int __scxk_cmask_assign(__u32 cid, scxk_cmask_t* m, bool set) {
  __u64 __arena* w;
  __u64 bit = 1ULL << (cid & 63);
  int was;

  if (!scxk_cmask_contains(cid, m)) return -SCXK_CMASK_ERANGE;
  w = __scxk_cmask_word(cid, m);
  was = (*w & bit) != 0;
  *w = set ? *w | bit : *w & ~bit;
  return was;
}

static __always_inline int __scxk_cmask_test_and_set(__u32 cid, scxk_cmask_t* m) {
  return __scxk_cmask_assign(cid, m, true);
}

static __always_inline int __scxk_cmask_test_and_clear(__u32 cid, scxk_cmask_t* m) {
  return __scxk_cmask_assign(cid, m, false);
}

/* Non-atomic: 0, or -SCXK_CMASK_ERANGE outside the window. */
static __always_inline int __scxk_cmask_set(__u32 cid, scxk_cmask_t* m) {
  int ret = __scxk_cmask_assign(cid, m, true);

  return ret < 0 ? ret : 0;
}

static __always_inline int __scxk_cmask_clear(__u32 cid, scxk_cmask_t* m) {
  int ret = __scxk_cmask_assign(cid, m, false);

  return ret < 0 ? ret : 0;
}

/* Atomic update of the cid's word: the previous value (0/1), -SCXK_CMASK_ERANGE
 * outside the window, -SCXK_CMASK_EBUSY if the exchange kept failing. */
static __always_inline int __scxk_cmask_cas(__u32 cid, scxk_cmask_t* m, bool set) {
  __u64 __arena* w;
  __u64 bit = 1ULL << (cid & 63), old, new;
  __u32 i;

  if (!scxk_cmask_contains(cid, m)) return -SCXK_CMASK_ERANGE;
  w = __scxk_cmask_word(cid, m);
  bpf_for(i, 0, SCXK_CMASK_CAS_TRIES) {
    old = *w;
    if (!!(old & bit) == set) return set;
    new = set ? old | bit : old & ~bit;
    if (__sync_val_compare_and_swap(w, old, new) == old) return !set;
  }
  return -SCXK_CMASK_EBUSY;
}

static __always_inline int scxk_cmask_test_and_set(__u32 cid, scxk_cmask_t* m) {
  return __scxk_cmask_cas(cid, m, true);
}

static __always_inline int scxk_cmask_test_and_clear(__u32 cid, scxk_cmask_t* m) {
  return __scxk_cmask_cas(cid, m, false);
}

/* Atomic: 0, -SCXK_CMASK_ERANGE or -SCXK_CMASK_EBUSY. */
static __always_inline int scxk_cmask_set(__u32 cid, scxk_cmask_t* m) {
  int ret = __scxk_cmask_cas(cid, m, true);

  return ret < 0 ? ret : 0;
}

static __always_inline int scxk_cmask_clear(__u32 cid, scxk_cmask_t* m) {
  int ret = __scxk_cmask_cas(cid, m, false);

  return ret < 0 ? ret : 0;
}

/* Clears every cid of the window. */
static __always_inline void scxk_cmask_zero(scxk_cmask_t* m) {
  __u32 words = scxk_cmask_used_words(m), i;

  bpf_for(i, 0, SCXK_CMASK_MAX_WORDS) {
    if (i >= words) break;
    m->bits[i] = 0;
  }
}

enum {
  SCXK_CMASK_OP_AND,
  SCXK_CMASK_OP_OR,
  SCXK_CMASK_OP_ANDNOT,
  SCXK_CMASK_OP_COPY,
  SCXK_CMASK_OP_SUBSET,     /* stops at a bit of a missing from b */
  SCXK_CMASK_OP_INTERSECTS, /* stops at a bit set in both */
};

/* Applies op to each word of the overlap of a's and b's windows; returns 1 as
 * soon as a predicate op holds for a word, 0 when the walk completes. */
static __always_inline int __scxk_cmask_walk(scxk_cmask_t* a, const scxk_cmask_t* b, int op) {
  __u32 a_end = scxk_cmask_end(a), b_end = scxk_cmask_end(b);
  __u32 lo = a->base > b->base ? a->base : b->base;
  __u32 hi = a_end < b_end ? a_end : b_end;
  __u32 lo_word, hi_word, i;

  if (lo >= hi) return 0;
  lo_word = lo / 64;
  hi_word = (hi - 1) / 64;
  bpf_for(i, 0, SCXK_CMASK_MAX_WORDS) {
    __u32 w = lo_word + i;
    __u64 mask = ~0ULL, av, bv;
    __u64 __arena* ap;

    if (w > hi_word) break;
    if (w == lo_word) mask &= SCXK_GENMASK_U64(63, lo & 63);
    if (w == hi_word) mask &= SCXK_GENMASK_U64((hi - 1) & 63, 0);
    ap = &a->bits[w - a->base / 64];
    av = *ap;
    bv = b->bits[w - b->base / 64];
    switch (op) {
      case SCXK_CMASK_OP_AND:
        *ap = av & (~mask | bv);
        break;
      case SCXK_CMASK_OP_OR:
        *ap = av | (bv & mask);
        break;
      case SCXK_CMASK_OP_ANDNOT:
        *ap = av & ~(bv & mask);
        break;
      case SCXK_CMASK_OP_COPY:
        *ap = (av & ~mask) | (bv & mask);
        break;
      case SCXK_CMASK_OP_SUBSET:
        if (av & ~bv & mask) return 1;
        break;
      case SCXK_CMASK_OP_INTERSECTS:
        if (av & bv & mask) return 1;
        break;
    }
  }
  return 0;
}

static __always_inline int __scxk_cmask_combine(scxk_cmask_t* dst, const scxk_cmask_t* src,
                                                int op) {
  __u32 lo = dst->base > src->base ? dst->base : src->base;
  __u32 d_end = scxk_cmask_end(dst), s_end = scxk_cmask_end(src);
  __u32 hi = d_end < s_end ? d_end : s_end;

  if (lo >= hi && dst->nr_cids && src->nr_cids) return -SCXK_CMASK_EINVAL;
  __scxk_cmask_walk(dst, src, op);
  return 0;
}

static __always_inline int scxk_cmask_and(scxk_cmask_t* dst, const scxk_cmask_t* src) {
  return __scxk_cmask_combine(dst, src, SCXK_CMASK_OP_AND);
}

static __always_inline int scxk_cmask_or(scxk_cmask_t* dst, const scxk_cmask_t* src) {
  return __scxk_cmask_combine(dst, src, SCXK_CMASK_OP_OR);
}

static __always_inline int scxk_cmask_andnot(scxk_cmask_t* dst, const scxk_cmask_t* src) {
  return __scxk_cmask_combine(dst, src, SCXK_CMASK_OP_ANDNOT);
}

static __always_inline int scxk_cmask_copy(scxk_cmask_t* dst, const scxk_cmask_t* src) {
  return __scxk_cmask_combine(dst, src, SCXK_CMASK_OP_COPY);
}

/* The lowest set cid >= cid (cids below the window start at base), or
 * scxk_cmask_end(m) when there is none. */
static __always_inline __u32 scxk_cmask_next_set(const scxk_cmask_t* m, __u32 cid) {
  __u32 end = scxk_cmask_end(m), wbase = m->base / 64, start_wi, last_wi, i;

  if (cid < m->base) cid = m->base;
  if (cid >= end) return end;
  start_wi = cid / 64 - wbase;
  last_wi = (end - 1) / 64 - wbase;
  bpf_for(i, 0, SCXK_CMASK_MAX_WORDS) {
    __u32 wi = start_wi + i, found;
    __u64 word;

    if (wi > last_wi) break;
    word = m->bits[wi];
    if (i == 0) word &= SCXK_GENMASK_U64(63, cid & 63);
    if (!word) continue;
    found = (wbase + wi) * 64 + __builtin_ctzll(word);
    return found < end ? found : end;
  }
  return end;
}

static __always_inline __u32 scxk_cmask_first_set(const scxk_cmask_t* m) {
  return scxk_cmask_next_set(m, m->base);
}

/* The lowest set cid >= start, else the lowest set cid < start (round robin
 * with start = last + 1); scxk_cmask_end(m) when the mask is empty. */
static __always_inline __u32 scxk_cmask_next_set_wrap(const scxk_cmask_t* m, __u32 start) {
  __u32 end = scxk_cmask_end(m), found = scxk_cmask_next_set(m, start);

  if (found < end || start <= m->base) return found;
  found = scxk_cmask_first_set(m);
  return found < start ? found : end;
}

/* Visits the set cids of m in ascending order; cid is a __u32 variable. An
 * open-coded iterator bounds the loop, so the verifier need not walk every
 * possible iteration. (cid starts at base - 1: u32 arithmetic brings base 0
 * back to 0.) */
#define scxk_cmask_for_each(cid, m)                                                               \
  for (struct bpf_iter_num ___scxk_it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
       *___scxk_p                                                                                 \
       __attribute__((unused)) = (bpf_iter_num_new(&___scxk_it, 0, SCXK_CMASK_MAX_WORDS * 64),    \
                                  (void)bpf_iter_num_destroy, (cid) = (m)->base - 1, (void*)0);   \
       bpf_iter_num_next(&___scxk_it) &&                                                          \
       ((cid) = scxk_cmask_next_set((m), (cid) + 1)) < scxk_cmask_end(m);)

/* Every cid set in sub is set in super. */
static __always_inline bool scxk_cmask_subset(const scxk_cmask_t* sub, const scxk_cmask_t* super) {
  __u32 sub_end = scxk_cmask_end(sub), super_end = scxk_cmask_end(super);

  if (scxk_cmask_first_set(sub) < (super->base < sub_end ? super->base : sub_end)) return false;
  if (super_end < sub_end &&
      scxk_cmask_next_set(sub, super_end > sub->base ? super_end : sub->base) < sub_end)
    return false;
  return !__scxk_cmask_walk((scxk_cmask_t*)sub, super, SCXK_CMASK_OP_SUBSET);
}

/* The same set of cids. */
static __always_inline bool scxk_cmask_equal(const scxk_cmask_t* a, const scxk_cmask_t* b) {
  return scxk_cmask_subset(a, b) && scxk_cmask_subset(b, a);
}

static __always_inline bool scxk_cmask_intersects(const scxk_cmask_t* a, const scxk_cmask_t* b) {
  return __scxk_cmask_walk((scxk_cmask_t*)a, b, SCXK_CMASK_OP_INTERSECTS);
}

/* Number of set cids (padding bits are zero). */
static __always_inline __u32 scxk_cmask_weight(const scxk_cmask_t* m) {
  __u32 words = scxk_cmask_used_words(m), n = 0, i;

  bpf_for(i, 0, SCXK_CMASK_MAX_WORDS) {
    if (i >= words) break;
    n += __builtin_popcountll(m->bits[i]);
  }
  return n;
}

#endif /* SCXKIT_BPF_CMASK_BPF_H */
