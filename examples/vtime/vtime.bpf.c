// SPDX-License-Identifier: GPL-2.0
/* vtime: weighted virtual-time scheduling (cpu form). Each task carries a
 * virtual time that advances by the time it ran, scaled by 100/weight (nice 0
 * has weight 100), so a task of twice the weight is charged half as much and
 * gets about twice the CPU. Runnable tasks wait in one queue ordered by that
 * time; a waking task with an idle CPU at hand goes straight to it. A task
 * that slept long is not allowed to bank more than one slice of credit, or it
 * would own the CPUs when it wakes. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "example_exit.bpf.h"

char _license[] SEC("license") = "GPL";

#define VTIME_DSQ 0

/* The virtual time of the task that started running last: the queue's "now". */
static u64 vtime_now;

static bool before(u64 a, u64 b) {
  return (s64)(a - b) < 0;
}

SEC("struct_ops.s/vtime_init")
s32 BPF_PROG(vtime_init) {
  return scx_bpf_create_dsq(VTIME_DSQ, -1);
}

SEC("struct_ops/vtime_select_cpu")
s32 BPF_PROG(vtime_select_cpu, struct task_struct* p, s32 prev_cpu, u64 wake_flags) {
  bool idle = false;
  s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);
  if (idle) scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
  return cpu;
}

SEC("struct_ops/vtime_enqueue")
void BPF_PROG(vtime_enqueue, struct task_struct* p, u64 enq_flags) {
  u64 vtime = p->scx.dsq_vtime;
  /* At most one slice of credit for time spent asleep. */
  if (before(vtime, vtime_now - SCX_SLICE_DFL)) vtime = vtime_now - SCX_SLICE_DFL;
  scx_bpf_dsq_insert_vtime(p, VTIME_DSQ, SCX_SLICE_DFL, vtime, enq_flags);
}

SEC("struct_ops/vtime_dispatch")
void BPF_PROG(vtime_dispatch, s32 cpu, struct task_struct* prev) {
  scx_bpf_dsq_move_to_local(VTIME_DSQ);
}

SEC("struct_ops/vtime_running")
void BPF_PROG(vtime_running, struct task_struct* p) {
  /* Racy across CPUs, and that is fine: it only has to move forward roughly. */
  if (before(vtime_now, p->scx.dsq_vtime)) vtime_now = p->scx.dsq_vtime;
}

SEC("struct_ops/vtime_stopping")
void BPF_PROG(vtime_stopping, struct task_struct* p, bool runnable) {
  /* Charge what it used of its slice, inversely to its weight. */
  p->scx.dsq_vtime += (SCX_SLICE_DFL - p->scx.slice) * 100 / p->scx.weight;
}

SEC("struct_ops/vtime_enable")
void BPF_PROG(vtime_enable, struct task_struct* p) {
  p->scx.dsq_vtime = vtime_now;
}

SEC(".struct_ops.link")
struct sched_ext_ops vtime_ops = {
    .select_cpu = (void*)vtime_select_cpu,
    .enqueue = (void*)vtime_enqueue,
    .dispatch = (void*)vtime_dispatch,
    .running = (void*)vtime_running,
    .stopping = (void*)vtime_stopping,
    .enable = (void*)vtime_enable,
    .init = (void*)vtime_init,
    .exit = (void*)example_exit,
    .name = "vtime",
};
