/* Printing to a BPF program's stdout/stderr stream (Linux 6.17+) from BPF C;
 * read them with `scxkit prog stdout|stderr --id N`. libbpf 1.4 has no macro
 * for it, so this one wraps the kfunc the way bpf_printk wraps its helper.
 * Include after vmlinux.h (BPF_NO_KFUNC_PROTOTYPES) and bpf_helpers.h.
 *
 *   scxkit_stream_printk(SCXKIT_STDERR, "lost %d tasks\n", n);
 *
 * Every argument is passed as a u64 (at most 12, like bpf_snprintf); the
 * format must be a string literal. Returns 0 or a negative error. */
#ifndef SCXKIT_BPF_STREAM_H
#define SCXKIT_BPF_STREAM_H

#define SCXKIT_STDOUT 1
#define SCXKIT_STDERR 2

int bpf_stream_vprintk_impl(int stream_id, const char* fmt__str, const void* args, __u32 len__sz,
                            void* aux__prog) __ksym __weak;

/* One spare zero slot keeps the array non-empty for a format without
 * arguments; the kernel ignores arguments the format does not use. */
#define scxkit_stream_printk(stream, fmt, args...)                                                \
  ({                                                                                              \
    static const char ___scxkit_fmt[] = fmt;                                                      \
    unsigned long long ___scxkit_param[___bpf_narg(args) + 1] = {};                               \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wint-conversion\"")         \
        ___bpf_fill(___scxkit_param, args);                                                       \
    _Pragma("GCC diagnostic pop") bpf_stream_vprintk_impl(stream, ___scxkit_fmt, ___scxkit_param, \
                                                          sizeof(___scxkit_param), (void*)0);     \
  })

#endif
