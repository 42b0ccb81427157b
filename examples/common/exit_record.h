/* What every example scheduler's BPF side and its loader share: the kernel's
 * exit record (struct scx_exit_info), copied by ops.exit where the loader can
 * read it after detaching. Plain C: the BPF side includes it too. */
#pragma once

struct scx_exit_record {
  unsigned int kind; /* enum scx_exit_kind: 64 UNREG, 1025 ERROR_BPF, 1026 ERROR_STALL, ... */
  long long exit_code;
  char reason[128];
  char msg[1024];
};
