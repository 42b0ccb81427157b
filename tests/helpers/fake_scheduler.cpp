// A stand-in sched_ext scheduler for the harness tests. It drives a fake
// sched_ext sysfs tree the way the kernel would for a real scheduler:
// attaching creates <root>/root/ops with the name and sets state "enabled";
// detaching empties ops and sets "disabled". The time of each change is
// written (CLOCK_MONOTONIC ns, just before the change) next to the tree so
// tests can measure how soon the harness noticed. Its pid goes to SYSFS_ROOT.pid.
//
//   fake_scheduler MODE SYSFS_ROOT [ARGS...]
//     attach DELAY_MS NAME          attach after a delay; detach and exit 0 on SIGTERM
//     crash                         print libbpf/verifier lines, then abort()
//     never-attach                  stay alive, never attach; exit 0 on SIGTERM
//     attach-then-detach DELAY_MS AFTER_MS NAME
//                                   attach, then the "kernel" detaches it (stall); keep running
//     attach-then-crash DELAY_MS AFTER_MS NAME
//                                   attach, then die of SIGSEGV while attached
//     ignore-term NAME              attach at once and ignore SIGTERM
//     fork-helper-exit              fork a helper that sleeps forever, then exit 0
//     huge-line MIB                 write one line of MIB MiB (sparse: no disk used) and a
//                                   last line to stdout, then abort()
//     setsid-helpers NAME           start two helpers that leave its process group and
//                                   ignore SIGTERM — a setsid() child and a double-forked
//                                   daemon — write "PID PID" to SYSFS_ROOT.helper_pids,
//                                   attach, exit 0 on SIGTERM
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string g_root;
volatile sig_atomic_t g_term = 0;

void write_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  if (write(fd, text.data(), text.size()) < 0) perror("write");
  close(fd);
}

void stamp(const char* what) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  write_file(g_root + "." + what + "_ns",
             std::to_string(static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec));
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && !g_term) {
  }
}

void attach(const std::string& name) {
  mkdir((g_root + "/root").c_str(), 0755);
  write_file(g_root + "/state", "enabled\n");
  stamp("attach");  // just before the write that attaches: latencies measured from here
  write_file(g_root + "/root/ops", name + "\n");
  std::printf("attached as %s\n", name.c_str());
  std::fflush(stdout);
}

void detach() {
  write_file(g_root + "/root/ops", "");
  write_file(g_root + "/state", "disabled\n");
}

void on_term(int) {
  g_term = 1;
}

void run_until_term() {
  while (!g_term) pause();
}

[[noreturn]] void sleep_forever_ignoring_term() {
  signal(SIGTERM, SIG_IGN);
  for (;;) pause();
}

// A child in a session of its own, and a daemon (setsid, fork, parent exits).
void start_setsid_helpers() {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  const pid_t child = fork();
  if (child == 0) {
    setsid();
    sleep_forever_ignoring_term();
  }
  const pid_t middle = fork();
  if (middle == 0) {
    setsid();
    const pid_t daemon = fork();
    if (daemon == 0) sleep_forever_ignoring_term();
    if (write(fds[1], &daemon, sizeof(daemon)) != sizeof(daemon)) _exit(1);
    _exit(0);
  }
  pid_t daemon = 0;
  if (read(fds[0], &daemon, sizeof(daemon)) != sizeof(daemon)) std::abort();
  waitpid(middle, nullptr, 0);
  write_file(g_root + ".helper_pids", std::to_string(child) + " " + std::to_string(daemon));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  g_root = argv[2];
  write_file(g_root + ".pid", std::to_string(getpid()));
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);

  if (mode == "attach" && argc == 5) {
    sleep_ms(std::atol(argv[3]));
    attach(argv[4]);
    run_until_term();
    detach();
    return 0;
  }
  if (mode == "crash") {
    std::fprintf(stderr,
                 "libbpf: prog 'fake_enqueue': BPF program load failed: Permission denied\n");
    std::fprintf(stderr, "libbpf: prog 'fake_enqueue': -- BEGIN PROG LOAD LOG --\n");
    std::fprintf(stderr, "R1 invalid mem access 'scalar'\nverifier rejected the program\n");
    std::fflush(stderr);
    std::abort();
  }
  if (mode == "huge-line" && argc == 4) {
    std::printf("libbpf: loading\n");
    std::fflush(stdout);
    struct stat st {};
    if (fstat(STDOUT_FILENO, &st) != 0 ||
        ftruncate(STDOUT_FILENO, st.st_size + (std::atoll(argv[3]) << 20)) != 0) {
      return 3;
    }
    std::printf("\nverifier rejected the program after a huge line\n");  // appended at the end
    std::fflush(stdout);
    signal(SIGABRT, SIG_DFL);
    std::abort();
  }
  if (mode == "never-attach") {
    run_until_term();
    return 0;
  }
  if ((mode == "attach-then-detach" || mode == "attach-then-crash") && argc == 6) {
    sleep_ms(std::atol(argv[3]));
    attach(argv[5]);
    sleep_ms(std::atol(argv[4]));
    if (mode == "attach-then-crash") {
      stamp("crash");
      signal(SIGSEGV, SIG_DFL);  // a sanitizer build's handler would turn this into exit(1)
      raise(SIGSEGV);
    }
    std::printf("sched_ext: BPF scheduler \"%s\" disabled (runnable task stall)\n", argv[5]);
    std::fflush(stdout);
    stamp("detach");
    detach();
    run_until_term();
    return 0;
  }
  if (mode == "ignore-term" && argc == 4) {
    signal(SIGTERM, SIG_IGN);
    attach(argv[3]);
    for (;;) pause();
  }
  if (mode == "setsid-helpers" && argc == 4) {
    start_setsid_helpers();
    attach(argv[3]);
    run_until_term();
    detach();
    return 0;
  }
  if (mode == "fork-helper-exit") {
    const pid_t helper = fork();
    if (helper == 0) {
      signal(SIGTERM, SIG_IGN);
      for (;;) pause();
    }
    write_file(g_root + ".helper_pid", std::to_string(helper));
    sleep_ms(50);
    return 0;
  }
  return 2;
}
