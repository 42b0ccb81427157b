// SPDX-License-Identifier: GPL-2.0
/* fifo: the smallest useful sched_ext scheduler (cpu form). Every runnable
 * task goes to one shared queue in arrival order; each CPU takes the next one
 * when it needs work. The shared exit callback keeps the kernel's exit record
 * (kind, reason, message) for the loader. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "example_exit.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

SEC("struct_ops.s/fifo_init")
s32 BPF_PROG(fifo_init) {
  /* Creating a queue may allocate: only sleepable init may do it. */
  return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SEC("struct_ops/fifo_enqueue")
void BPF_PROG(fifo_enqueue, struct task_struct* p, u64 enq_flags) {
  scx_bpf_dsq_insert(p, SHARED_DSQ, SCX_SLICE_DFL, enq_flags);
}

SEC("struct_ops/fifo_dispatch")
void BPF_PROG(fifo_dispatch, s32 cpu, struct task_struct* prev) {
  scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
    .init = (void*)fifo_init,
    .enqueue = (void*)fifo_enqueue,
    .dispatch = (void*)fifo_dispatch,
    .exit = (void*)example_exit,
    .name = "fifo",
};
