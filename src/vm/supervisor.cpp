// One run: build the guest image, start QEMU on inherited descriptors, and
// watch everything it says until the guest powers off, panics, hangs or the
// caller cancels. Single-threaded: one poll loop, every wait bounded.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "scxkit/vm.hpp"
#include "vm/console.hpp"
#include "vm/frame.hpp"
#include "vm/initramfs.hpp"
#include "vm/kvm_probe.hpp"
#include "vm/process.hpp"
#include "vm/qemu_args.hpp"

namespace scxkit::vm {

using namespace internal;
namespace fs = std::filesystem;
using Outcome = RunResult::Outcome;

namespace {

// Descriptor numbers inside QEMU.
constexpr int kConsoleFd = 3, kChannelFd = 4, kInitrdFd = 5;
constexpr std::size_t kQemuStderrLimit = 16 * 1024;
constexpr auto kPanicGrace = std::chrono::seconds(10);     // panic=-1 reboots, QEMU exits
constexpr auto kPowerOffGrace = std::chrono::seconds(30);  // after the agent's "done"

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Files the agent brings out, written under out_dir; never outside it.
class FileSink {
 public:
  explicit FileSink(std::string dir) : dir_(std::move(dir)) {}
  Result<void> write(std::string_view payload) {
    const auto nul = payload.find('\0');
    const fs::path rel(std::string(payload.substr(0, nul == std::string_view::npos ? 0 : nul)));
    if (dir_.empty()) return {};
    bool escapes = rel.empty() || rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    if (escapes)
      return make_error(Errc::invalid_argument,
                        fmt::format("the guest sent a file named '{}'", rel.string()));
    auto [it, fresh] = open_.try_emplace(rel.string());
    if (fresh) {
      const fs::path dest = fs::path(dir_) / rel;
      std::error_code ec;
      fs::create_directories(dest.parent_path(), ec);
      it->second = Fd(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (it->second.get() < 0) return os_error(fmt::format("creating {}", dest.string()), errno);
    }
    return write_all(it->second.get(), payload.substr(nul + 1));
  }
  std::size_t count() const { return open_.size(); }

 private:
  std::string dir_;
  std::map<std::string, Fd> open_;
};

struct Session {
  const RunOptions& o;
  Clock::time_point start = Clock::now();
  ConsoleLog console;
  FrameDecoder decoder;
  FileSink files{o.out_dir};
  std::string qemu_stderr;
  std::optional<Clock::time_point> ready_at, panic_at, done_at;
  std::optional<std::string> exit_payload;
  bool cancelled = false, timed_out = false, kvm_failed = false;
  std::string channel_error;

  void on_console(std::string_view bytes, bool end) {
    auto lines = console.feed(bytes);
    if (end) {
      auto rest = console.flush();
      lines.insert(lines.end(), rest.begin(), rest.end());
    }
    for (const auto& l : lines) {
      if (o.kernel_log_fd >= 0) (void)write_all(o.kernel_log_fd, l + "\n");
    }
    if (console.panicked() && !panic_at) panic_at = Clock::now();
  }

  // Returns whether the host must now acknowledge "done".
  bool on_channel(std::string_view bytes) {
    decoder.feed(bytes);
    bool ack = false;
    for (;;) {
      auto f = decoder.next();
      if (!f) {
        channel_error = f.error().message;
        return ack;
      }
      if (!*f) return ack;
      const Frame& frame = **f;
      switch (frame.type) {
        case FrameType::ready:
          ready_at = Clock::now();
          if (o.progress) {
            o.progress(fmt::format("booted in {:.1f} s (guest uptime {} s)",
                                   std::chrono::duration<double>(*ready_at - start).count(),
                                   frame.payload));
          }
          break;
        case FrameType::out:
          if (o.stdout_fd >= 0) (void)write_all(o.stdout_fd, frame.payload);
          break;
        case FrameType::err:
          if (o.stderr_fd >= 0) (void)write_all(o.stderr_fd, frame.payload);
          break;
        case FrameType::exit:
          exit_payload = frame.payload;
          break;
        case FrameType::file:
          if (auto w = files.write(frame.payload); !w) channel_error = w.error().message;
          break;
        case FrameType::done:
          done_at = Clock::now();
          ack = true;
          break;
        case FrameType::ack:
          break;
      }
    }
  }

  RunResult result(const std::string& accel) const {
    RunResult r;
    r.accel = accel;
    r.total_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (ready_at)
      r.boot_time = std::chrono::duration_cast<std::chrono::milliseconds>(*ready_at - start);
    r.files_out = files.count();
    auto last_lines = [this] {
      auto lines = console.last_lines();
      for (auto& l : split_lines(qemu_stderr)) lines.push_back("qemu: " + l);
      return lines;
    };
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(o.timeout).count();
    if (exit_payload) {
      int code = -1;
      char kind[8] = {};
      std::sscanf(exit_payload->c_str(), "%7s %d", kind, &code);
      r.status = code;
      r.outcome = std::string_view(kind) == "exec" ? Outcome::not_started : Outcome::exited;
      r.message = r.outcome == Outcome::exited
                      ? fmt::format("the command exited with status {}", code)
                      : fmt::format("the command could not be started in the guest: {}",
                                    exit_payload->substr(exit_payload->find(' ', 5) + 1));
    }
    if (cancelled) {
      r.outcome = Outcome::cancelled;
      r.message = "cancelled; the guest was killed";
    } else if (console.panicked()) {
      r.outcome = Outcome::kernel_panic;
      r.kernel_lines = console.report();
      r.message = "the guest kernel panicked";
    } else if (console.oopsed()) {
      r.outcome = Outcome::kernel_oops;
      r.kernel_lines = console.report();
      r.message =
          "the guest kernel oopsed" + (exit_payload ? " (" + r.message + ")" : std::string());
    } else if (exit_payload) {
      // r is complete
    } else if (kvm_failed) {
      r.outcome = Outcome::boot_failed;
      r.kernel_lines = last_lines();
      r.message = "KVM could not run the guest (KVM internal error)";
    } else if (!ready_at) {
      r.outcome = Outcome::boot_failed;
      r.kernel_lines = last_lines();
      r.message =
          timed_out ? fmt::format(
                          "the guest did not boot within {} s",
                          std::chrono::duration_cast<std::chrono::seconds>(o.boot_timeout).count())
                    : "the guest did not boot (QEMU exited first)";
    } else if (timed_out) {
      r.outcome = Outcome::timed_out;
      r.kernel_lines = last_lines();
      r.message = fmt::format("the run passed its {} s timeout; the guest was killed", secs);
    } else {
      r.outcome = Outcome::agent_lost;
      r.kernel_lines = last_lines();
      r.message = channel_error.empty()
                      ? "the guest powered off before the command's exit was reported"
                      : "the guest channel broke: " + channel_error;
    }
    return r;
  }
};

Result<std::string> self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    return make_error(Errc::system_error, "cannot find this program's path in /proc/self/exe");
  return p.string();
}

}  // namespace

int exit_code_of(const RunResult& r) {
  switch (r.outcome) {
    case Outcome::exited:
    case Outcome::not_started:
      return r.status;
    case Outcome::kernel_panic:
    case Outcome::kernel_oops:
      return 123;
    case Outcome::timed_out:
      return 124;
    case Outcome::boot_failed:
    case Outcome::agent_lost:
      return 125;
    case Outcome::cancelled:
      return 130;
  }
  return 125;
}

Result<RunResult> run(const RunOptions& o) {
  if (o.command.empty())
    return make_error(Errc::invalid_argument, "no command to run in the guest");
  if (find_executable(kQemu).empty()) {
    return make_error(Errc::not_found,
                      fmt::format("{} is not installed (apt-get install qemu-system-x86)", kQemu));
  }
  if (o.kernel.vmlinuz.empty() || !fs::is_regular_file(o.kernel.vmlinuz)) {
    return make_error(Errc::not_found, fmt::format("no kernel image at '{}'", o.kernel.vmlinuz));
  }
  const bool kvm = o.accel == Accel::kvm || (o.accel == Accel::automatic && kvm_boots(o));
  const std::string accel = kvm ? "kvm" : "tcg";

  auto exe = self_exe();
  if (!exe) return tl::unexpected(exe.error());
  if (o.progress) o.progress("building the initramfs");
  auto image = build_initramfs({o.command, o.add, *exe});
  if (!image) return tl::unexpected(image.error());

  MachineSpec machine;
  machine.cpus = o.cpus;
  machine.topology = o.topology;
  machine.numa_nodes = o.numa_nodes;
  machine.memory_mib = o.memory_mib;
  machine.kvm = kvm;
  // The unpacked vmlinux boots through its PVH entry, skipping the
  // decompression that costs seconds under TCG.
  machine.kernel = o.kernel.vmlinux.empty() ? o.kernel.vmlinuz : o.kernel.vmlinux;
  machine.initrd = fmt::format("/proc/self/fd/{}", kInitrdFd);
  machine.append = kernel_cmdline();
  machine.console_fd = kConsoleFd;
  machine.channel_fd = kChannelFd;
  auto argv = qemu_argv(machine);
  if (!argv) return tl::unexpected(argv.error());
  auto console = socket_pair();
  auto channel = socket_pair();
  auto err_pipe = pipe_pair();
  if (!console || !channel || !err_pipe) {
    return tl::unexpected(!console   ? console.error()
                          : !channel ? channel.error()
                                     : err_pipe.error());
  }
  Fd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null_fd.get() < 0) return os_error("opening /dev/null", errno);
  if (o.progress) {
    o.progress(fmt::format("booting {} ({} MiB initramfs, {} files) with {} CPUs under {}",
                           o.kernel.version, image->bytes >> 20, image->files,
                           o.topology ? o.topology->cpus() : o.cpus, accel));
  }
  Session s{o};
  auto qemu = Subprocess::spawn({*argv,
                                 {{0, null_fd.get()},
                                  {1, err_pipe->second.get()},
                                  {2, err_pipe->second.get()},
                                  {kConsoleFd, console->second.get()},
                                  {kChannelFd, channel->second.get()},
                                  {kInitrdFd, image->fd.get()}}});
  if (!qemu) return tl::unexpected(qemu.error());
  console->second = Fd();
  channel->second = Fd();
  err_pipe->second = Fd();
  image->fd = Fd();  // QEMU has its own reference now
  for (int fd : {console->first.get(), channel->first.get(), err_pipe->first.get()}) {
    auto nb = set_nonblocking(fd);
    if (!nb) return tl::unexpected(nb.error());
  }

  const auto run_deadline = s.start + o.timeout;
  const auto boot_deadline = s.start + std::min<Clock::duration>(o.boot_timeout, o.timeout);
  enum { kConsole, kChannel, kStderr, kExit, kCancel, kCount };
  pollfd fds[kCount] = {{console->first.get(), POLLIN, 0},
                        {channel->first.get(), POLLIN, 0},
                        {err_pipe->first.get(), POLLIN, 0},
                        {qemu->pidfd(), POLLIN, 0},
                        {o.cancel_fd, POLLIN, 0}};
  auto drain = [&](int which, bool end) -> Result<void> {
    for (;;) {
      bool eof = false;
      auto bytes = read_some(fds[which].fd, 64 * 1024, &eof);
      if (!bytes) return tl::unexpected(bytes.error());
      if (which == kConsole) s.on_console(*bytes, end && (eof || bytes->empty()));
      if (which == kStderr && s.qemu_stderr.size() < kQemuStderrLimit) s.qemu_stderr += *bytes;
      if (which == kChannel && s.on_channel(*bytes)) {
        auto acked = write_all(fds[kChannel].fd, encode_frame(FrameType::ack, ""),
                               Clock::now() + std::chrono::seconds(5));
        (void)acked;  // if the guest is gone already, there is nothing to acknowledge
      }
      if (eof) fds[which].fd = -1;
      if (eof || bytes->empty()) return {};
    }
  };

  bool qemu_exited = false;
  while (!qemu_exited) {
    auto deadline = s.ready_at ? run_deadline : boot_deadline;
    if (s.panic_at) deadline = std::min(deadline, *s.panic_at + kPanicGrace);
    if (s.done_at) deadline = std::min(deadline, *s.done_at + kPowerOffGrace);
    const int n = ::poll(fds, kCount, poll_ms_until(deadline));
    if (n < 0 && errno != EINTR) return os_error("poll", errno);
    if (n <= 0) {
      if (Clock::now() < deadline) continue;
      s.timed_out = !s.panic_at && !s.done_at;
      break;
    }
    for (int i : {kConsole, kChannel, kStderr}) {
      if (fds[i].fd >= 0 && fds[i].revents != 0) {
        auto d = drain(i, false);
        if (!d) return tl::unexpected(d.error());
      }
    }
    if (s.qemu_stderr.find("KVM internal error") != std::string::npos) {
      s.kvm_failed = true;
      break;
    }
    if (fds[kCancel].fd >= 0 && fds[kCancel].revents != 0) {
      s.cancelled = true;
      break;
    }
    qemu_exited = fds[kExit].revents != 0;
  }
  qemu->kill_and_reap(Clock::now() + std::chrono::seconds(10));
  // Whatever QEMU wrote before it died is still in the socket buffers.
  for (int i : {kConsole, kChannel, kStderr}) {
    if (fds[i].fd >= 0) {
      auto d = drain(i, true);
      if (!d) return tl::unexpected(d.error());
    }
  }
  auto r = s.result(accel);
  if (o.progress)
    o.progress(fmt::format("{} after {:.1f} s", r.message, r.total_time.count() / 1000.0));
  return r;
}

}  // namespace scxkit::vm
