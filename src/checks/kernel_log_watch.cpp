// Watching /dev/kmsg: each read() returns one record "prio,seq,usec,flags;text"
// followed by continuation lines that start with a blank. A regular file or a
// pipe in the same format (or plain lines) works too, which is how tests feed
// it. Reading starts at the end: only what the kernel logs from now on counts.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <regex>

#include <fmt/format.h>

#include "scxkit/checks.hpp"

namespace scxkit {

namespace {

struct Kind {
  const char* name;
  std::regex pattern;
};

const std::vector<Kind>& builtin_kinds() {
  static const std::vector<Kind> kinds = [] {
    auto re = [](const char* p) {
      return std::regex(p, std::regex::ECMAScript | std::regex::optimize);
    };
    return std::vector<Kind>{
        {"RCU stall", re(R"(rcu.*(self-detected stall|detected stalls?|stall on CPU))")},
        {"soft lockup", re(R"(soft lockup)")},
        {"hard lockup", re(R"(hard LOCKUP)")},
        {"hung task", re(R"(blocked for more than \d+ seconds)")},
        {"sched_ext error",
         re(R"(sched_ext: .*(disabled \((?!unregistered from user space)|[Ee]rror|stall))")},
        {"workqueue lockup", re(R"(workqueue lockup)")},
    };
  }();
  return kinds;
}

// The message of a kmsg record, or the line itself when it is not one.
std::string message_of(const std::string& line) {
  const auto semi = line.find(';');
  if (semi == std::string::npos) return line;
  const std::string prefix = line.substr(0, semi);
  if (prefix.find(',') == std::string::npos ||
      prefix.find_first_not_of("0123456789,-+cm") != std::string::npos) {
    return line;
  }
  return line.substr(semi + 1);
}

}  // namespace

std::string kernel_trouble_kind(const std::string& message) {
  for (const auto& k : builtin_kinds()) {
    if (std::regex_search(message, k.pattern)) return k.name;
  }
  return "";
}

struct KernelLogWatch::State {
  int fd = -1;
  bool record_device = false;  // /dev/kmsg: one record per read()
  std::vector<std::regex> extra;
  std::string partial;
  ~State() {
    if (fd >= 0) close(fd);
  }
};

KernelLogWatch::KernelLogWatch(std::unique_ptr<State> s) : s_(std::move(s)) {}
KernelLogWatch::KernelLogWatch(KernelLogWatch&&) noexcept = default;
KernelLogWatch& KernelLogWatch::operator=(KernelLogWatch&&) noexcept = default;
KernelLogWatch::~KernelLogWatch() = default;

Result<KernelLogWatch> KernelLogWatch::open(const std::string& path,
                                            const std::vector<std::string>& extra_patterns) {
  auto s = std::make_unique<State>();
  for (const auto& p : extra_patterns) {
    try {
      s->extra.emplace_back(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return make_error(
          Errc::invalid_argument,
          fmt::format("kernel pattern '{}' is not a valid regular expression: {}", p, e.what()));
    }
  }
  s->fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (s->fd < 0) {
    return os_error(fmt::format("opening the kernel log {} (root is needed for /dev/kmsg)", path),
                    errno);
  }
  struct stat st {};
  if (fstat(s->fd, &st) != 0) return os_error(fmt::format("fstat {}", path), errno);
  s->record_device = S_ISCHR(st.st_mode);
  if (S_ISCHR(st.st_mode) || S_ISREG(st.st_mode)) lseek(s->fd, 0, SEEK_END);
  return KernelLogWatch(std::move(s));
}

int KernelLogWatch::fd() const {
  return s_->fd;
}

std::vector<KernelLine> KernelLogWatch::poll(double at_s) {
  std::vector<KernelLine> found;
  auto consider = [&](const std::string& line) {
    if (line.empty() || line[0] == ' ') return;  // kmsg continuation (dictionary) lines
    const std::string msg = message_of(line);
    std::string kind = kernel_trouble_kind(msg);
    for (const auto& re : s_->extra) {
      if (kind.empty() && std::regex_search(msg, re)) kind = "pattern";
    }
    if (!kind.empty()) found.push_back({at_s, kind, msg});
  };
  char buf[8192];
  for (int reads = 0; reads < 4096; ++reads) {  // bounded: a flood cannot hold the runner
    const ssize_t n = read(s_->fd, buf, sizeof(buf));
    if (n < 0 && errno == EPIPE) continue;  // records were overwritten; go on from the next
    if (n <= 0) break;                      // EAGAIN: nothing new; 0: end of a file
    s_->partial.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0, nl;
    while ((nl = s_->partial.find('\n', start)) != std::string::npos) {
      consider(s_->partial.substr(start, nl - start));
      start = nl + 1;
    }
    s_->partial.erase(0, start);
    if (s_->record_device && !s_->partial.empty()) {  // a record always ends in '\n'; be safe
      consider(s_->partial);
      s_->partial.clear();
    }
  }
  return found;
}

}  // namespace scxkit
