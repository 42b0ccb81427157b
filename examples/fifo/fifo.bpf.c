// SPDX-License-Identifier: GPL-2.0
/* fifo: the smallest useful sched_ext scheduler (cpu form). Every runnable
 * task goes to one shared queue in arrival order; each CPU takes the next one
 * when it needs work. The exit callback copies the kernel's exit record
 * (kind, reason, message) where the loader can read it after detaching. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fifo.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

struct fifo_exit_record exit_record;

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

SEC("struct_ops/fifo_exit")
void BPF_PROG(fifo_exit, struct scx_exit_info* ei) {
  exit_record.exit_code = ei->exit_code;
  bpf_probe_read_kernel_str(exit_record.reason, sizeof(exit_record.reason), ei->reason);
  bpf_probe_read_kernel_str(exit_record.msg, sizeof(exit_record.msg), ei->msg);
  /* The loader polls `kind` to notice a kick-out, but reads the strings
   * only after detaching (when ops.exit has returned): a plain store does. */
  exit_record.kind = ei->kind;
}

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
    .init = (void*)fifo_init,
    .enqueue = (void*)fifo_enqueue,
    .dispatch = (void*)fifo_dispatch,
    .exit = (void*)fifo_exit,
    .name = "fifo",
};
