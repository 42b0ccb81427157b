// The agent /init runs inside the guest: runs the command the initramfs
// carries with stdin from /dev/null, forwards its stdout and stderr as
// frames, reports its exit, sends the files under /out, waits for the
// host's acknowledgement and powers the guest off.
#include <fcntl.h>
#include <poll.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "scxkit/vm.hpp"
#include "vm/frame.hpp"
#include "vm/initramfs.hpp"
#include "vm/process.hpp"

namespace scxkit::vm {

using namespace internal;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// /dev/vportNpM of the port QEMU named `name` (devtmpfs makes the node).
Result<std::string> find_port(const std::string& name, Clock::time_point deadline) {
  for (;;) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/class/virtio-ports", ec)) {
      std::ifstream in(e.path() / "name");
      std::string n;
      if (std::getline(in, n) && n == name) return "/dev/" + e.path().filename().string();
    }
    if (Clock::now() >= deadline) {
      return make_error(Errc::not_found,
                        fmt::format("no virtio-serial port named {} in the guest", name));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct Agent {
  int port = -1;

  Result<void> send(FrameType type, std::string_view payload) {
    return write_all(port, encode_frame(type, payload));
  }

  Result<void> send_stream(FrameType type, std::string_view data) {
    for (std::size_t at = 0; at < data.size(); at += kChunk) {
      auto sent = send(type, data.substr(at, kChunk));
      if (!sent) return sent;
    }
    return {};
  }

  // Runs the command; returns the exit frame's payload.
  Result<std::string> run_command(const std::vector<std::string>& argv) {
    auto out = pipe_pair();
    auto err = pipe_pair();
    if (!out || !err) return tl::unexpected(!out ? out.error() : err.error());
    Fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ::setenv("SCXKIT_OUT", kGuestOut, 1);
    auto child = Subprocess::spawn(
        {argv, {{0, null_in.get()}, {1, out->second.get()}, {2, err->second.get()}}, "/root"});
    if (!child) {
      const int code = child.error().code == Errc::not_found ? 127 : 126;
      return fmt::format("exec {} {}", code, child.error().message);
    }
    out->second = Fd();
    err->second = Fd();
    pollfd fds[2] = {{out->first.get(), POLLIN, 0}, {err->first.get(), POLLIN, 0}};
    const FrameType types[2] = {FrameType::out, FrameType::err};
    std::optional<int> status;
    // After the command exits, helpers it left behind may hold its pipes
    // open: forward for a short grace, then stop listening.
    Clock::time_point drain_deadline = Clock::time_point::max();
    while ((fds[0].fd >= 0 || fds[1].fd >= 0) && Clock::now() < drain_deadline) {
      const int n = ::poll(fds, 2, status ? poll_ms_until(drain_deadline) : 100);
      if (n < 0 && errno != EINTR) return os_error("poll", errno);
      for (int i = 0; i < 2 && n > 0; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        bool eof = false;
        auto chunk = read_some(fds[i].fd, kChunk, &eof);
        if (!chunk) return tl::unexpected(chunk.error());
        if (!chunk->empty()) {
          auto sent = send(types[i], *chunk);
          if (!sent) return tl::unexpected(sent.error());
        }
        if (eof) fds[i].fd = -1;
      }
      if (!status) {
        status = child->wait_until(Clock::now());
        if (status) drain_deadline = Clock::now() + std::chrono::seconds(2);
      }
    }
    if (!status) status = child->wait_until(Clock::time_point::max());
    return fmt::format("exit {}", *status);
  }

  Result<void> send_files() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(kGuestOut, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      const std::string rel = fs::relative(it->path(), kGuestOut).string();
      auto data = read_file(it->path().string());
      if (!data) return tl::unexpected(data.error());
      std::size_t at = 0;
      do {  // an empty file is still one frame, so it exists on the host
        const std::string_view piece =
            std::string_view(*data).substr(at, kMaxFramePayload - rel.size() - 1);
        auto sent = send(FrameType::file, rel + '\0' + std::string(piece));
        if (!sent) return sent;
        at += piece.size();
      } while (at < data->size());
    }
    return {};
  }

  // The host's ack means it has every frame; a lost host must not hang the guest.
  void wait_for_ack() {
    FrameDecoder decoder;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      pollfd p{port, POLLIN, 0};
      if (::poll(&p, 1, poll_ms_until(deadline)) <= 0) continue;
      bool eof = false;
      auto chunk = read_some(port, 4096, &eof);
      if (!chunk || eof) return;
      decoder.feed(*chunk);
      for (auto f = decoder.next(); f && *f; f = decoder.next()) {
        if ((*f)->type == FrameType::ack) return;
      }
    }
  }
};

std::vector<std::string> read_command() {
  std::ifstream in(kGuestCommand, std::ios::binary);
  std::vector<std::string> argv;
  std::string arg;
  while (std::getline(in, arg, '\0')) argv.push_back(arg);
  return argv;
}

}  // namespace

int guest_agent_main() {
  auto path = find_port(kControlPort, Clock::now() + std::chrono::seconds(30));
  if (!path) {
    fmt::print(stderr, "scxkit agent: {}\n", path.error().message);
    return 1;
  }
  Fd port(::open(path->c_str(), O_RDWR | O_CLOEXEC));
  if (port.get() < 0) {
    fmt::print(stderr, "scxkit agent: opening {}: {}\n", *path, std::strerror(errno));
    return 1;
  }
  Agent agent{port.get()};
  std::string uptime;
  std::ifstream("/proc/uptime") >> uptime;
  auto step = agent.send(FrameType::ready, uptime);
  Result<std::string> exit =
      step ? agent.run_command(read_command()) : tl::unexpected(step.error());
  if (exit) step = agent.send(FrameType::exit, *exit);
  if (exit && step) step = agent.send_files();
  if (exit && step) step = agent.send(FrameType::done, "");
  if (!exit || !step) {
    fmt::print(stderr, "scxkit agent: {}\n", (!exit ? exit.error() : step.error()).message);
    return 1;
  }
  agent.wait_for_ack();
  ::sync();
  ::reboot(RB_POWER_OFF);
  fmt::print(stderr, "scxkit agent: power-off failed: {}\n", std::strerror(errno));
  return 1;
}

}  // namespace scxkit::vm
