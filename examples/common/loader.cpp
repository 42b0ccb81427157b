#include "loader.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "scxkit/sched_ext.hpp"

namespace scx_example {

namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
  g_stop = 1;
}

std::string escape_newlines(const char* text) {
  std::string out;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c == '\n') {
      out += "\\n";
    } else {
      out += *c;
    }
  }
  return out;
}

}  // namespace

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() {
  return g_stop != 0;
}

int load_failed(const char* prog) {
  std::fprintf(stderr, "%s: loading the BPF scheduler failed: %s\n", prog, std::strerror(errno));
  return kFailed;
}

int attach_and_hold(const char* prog, bpf_map* ops, const scx_exit_record& record,
                    const WhileAttached& while_attached) {
  bpf_link* link = bpf_map__attach_struct_ops(ops);
  if (link == nullptr) {
    std::fprintf(stderr, "%s: attaching failed: %s (is another scheduler attached?)\n", prog,
                 std::strerror(errno));
    return kFailed;
  }
  std::printf("%s: attached\n", prog);
  std::fflush(stdout);
  // The BPF side writes `kind` last; an acquire load orders the strings before it.
  auto kind = [&] {
    return std::atomic_ref<const unsigned int>(record.kind).load(std::memory_order_acquire);
  };
  const auto attached_at = std::chrono::steady_clock::now();
  while (g_stop == 0 && kind() == 0) {
    if (while_attached) {
      while_attached(std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - attached_at));
    }
    usleep(50 * 1000);
  }
  const bool kicked_out = kind() != 0;
  bpf_link__destroy(link);  // ops.exit has run once this returns
  const unsigned int k = kind();
  const std::string kind_name(scxkit::to_string(static_cast<scxkit::ScxExitKind>(k)));
  std::printf("%s: exit kind %u (%s) code %lld, %s; reason: %s; message: %s\n", prog, k,
              kind_name.c_str(), record.exit_code,
              kicked_out ? "kicked out by the kernel" : "detached on request", record.reason,
              escape_newlines(record.msg).c_str());
  std::fflush(stdout);
  return kicked_out ? kKickedOut : kDetachedOnRequest;
}

Options::Options(const char* prog, int argc, char** argv, std::map<std::string, std::string> known)
    : prog_(prog), known_(std::move(known)) {
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (known_.count(name) == 0) usage("unknown option '" + name + "'");
    if (i + 1 >= argc) usage(name + " needs a value");
    values_[name] = argv[i + 1];
  }
}

std::string Options::text(const std::string& name, std::string fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::uint64_t Options::number(const std::string& name, std::uint64_t fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0' || it->second[0] == '-') {
    usage(name + " takes a non-negative whole number, not '" + it->second + "'");
  }
  return v;
}

void Options::usage(const std::string& why) const {
  std::fprintf(stderr, "%s: %s\nusage: %s", prog_, why.c_str(), prog_);
  for (const auto& [name, meaning] : known_)
    std::fprintf(stderr, " [%s %s]", name.c_str(), meaning.c_str());
  std::fprintf(stderr, "\n");
  std::exit(kUsage);
}

}  // namespace scx_example
