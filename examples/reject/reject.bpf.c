// SPDX-License-Identifier: GPL-2.0
/* reject: a test fixture the verifier refuses. Its enqueue writes past the
 * end of a map value (8 bytes, written at offset 24), which the verifier
 * reports as "invalid access to map value, value_size=8 off=24 size=8";
 * loading fails, and nothing attaches. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "example_exit.bpf.h"

char _license[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, u64);
} enqueues SEC(".maps");

SEC("struct_ops/reject_enqueue")
void BPF_PROG(reject_enqueue, struct task_struct* p, u64 enq_flags) {
  u32 key = 0;
  u64* n = bpf_map_lookup_elem(&enqueues, &key);
  if (n) n[3]++; /* deliberately out of bounds: the verifier must refuse this */
  scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops reject_ops = {
    .enqueue = (void*)reject_enqueue,
    .exit = (void*)example_exit,
    .name = "reject",
};
