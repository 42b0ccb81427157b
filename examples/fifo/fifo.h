/* What the fifo scheduler's BPF side and its loader share. */
#pragma once

/* The kernel's exit record, copied by ops.exit (struct scx_exit_info). */
struct fifo_exit_record {
  unsigned int kind; /* enum scx_exit_kind: 64 UNREG, 1025 ERROR_BPF, 1026 ERROR_STALL, ... */
  long long exit_code;
  char reason[128];
  char msg[1024];
};
