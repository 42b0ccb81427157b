/* Printing to a BPF program's stdout/stderr stream (Linux 6.17+) from BPF C;
 * read them with `scxkit prog stdout|stderr --id N`. libbpf 1.4 has no macro
 * for it, so this one wraps the kfunc the way bpf_printk wraps its helper.
 * Include after vmlinux.h (BPF_NO_KFUNC_PROTOTYPES) and bpf_helpers.h.
 *
 *   scxkit_stream_printk(SCXKIT_STDERR, "lost %d tasks\n", n);
 *
 * Every argument is passed as a u64 (at most 12, like bpf_snprintf); the
 * format must be a string literal. Returns 0 or a negative error
 * (-EOPNOTSUPP: this kernel has no stream printing). */
#ifndef SCXKIT_BPF_STREAM_H
#define SCXKIT_BPF_STREAM_H

#define SCXKIT_STDOUT 1
#define SCXKIT_STDERR 2

/* The kfunc's name and form changed between kernels; each is declared weak
 * and the one this kernel has is called (the verifier drops the others):
 * 7.x: bpf_stream_vprintk() with the program passed implicitly; 6.18:
 * bpf_stream_vprintk_impl(..., aux__prog); 6.17: bpf_stream_vprintk(...,
 * aux__prog), named here with a libbpf "___" flavour suffix. None: -EOPNOTSUPP. */
int bpf_stream_vprintk(int stream_id, const char* fmt__str, const void* args,
                       __u32 len__sz) __ksym __weak;
int bpf_stream_vprintk_impl(int stream_id, const char* fmt__str, const void* args, __u32 len__sz,
                            void* aux__prog) __ksym __weak;
int bpf_stream_vprintk___aux(int stream_id, const char* fmt__str, const void* args, __u32 len__sz,
                             void* aux__prog) __ksym __weak;

#define ___scxkit_stream_vprintk(stream, fmt, param, size)                            \
  (bpf_ksym_exists(bpf_stream_vprintk) ? bpf_stream_vprintk(stream, fmt, param, size) \
   : bpf_ksym_exists(bpf_stream_vprintk_impl)                                         \
       ? bpf_stream_vprintk_impl(stream, fmt, param, size, (void*)0)                  \
   : bpf_ksym_exists(bpf_stream_vprintk___aux)                                        \
       ? bpf_stream_vprintk___aux(stream, fmt, param, size, (void*)0)                 \
       : -95 /* -EOPNOTSUPP */)

/* One spare zero slot keeps the array non-empty for a format without
 * arguments; the kernel ignores arguments the format does not use. */
#define scxkit_stream_printk(stream, fmt, args...)                                                 \
  ({                                                                                               \
    static const char ___scxkit_fmt[] = fmt;                                                       \
    unsigned long long ___scxkit_param[___bpf_narg(args) + 1] = {};                                \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wint-conversion\"")          \
        ___bpf_fill(___scxkit_param, args);                                                        \
    _Pragma("GCC diagnostic pop")                                                                  \
        ___scxkit_stream_vprintk(stream, ___scxkit_fmt, ___scxkit_param, sizeof(___scxkit_param)); \
  })

#endif
