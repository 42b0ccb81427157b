#include "vm/apt_fetch.hpp"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "vm/process.hpp"

namespace scxkit::vm::internal {

namespace {

constexpr auto kAptDeadline = std::chrono::minutes(10);

std::string last_lines(const std::string& text, std::size_t n) {
  std::size_t at = text.size();
  while (n-- > 0 && at > 0) {
    const auto nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) return text;
    at = nl;
  }
  return text.substr(at == 0 ? 0 : at + 1);
}

}  // namespace

Result<PrivateApt> PrivateApt::prepare(const std::string& root, const std::string& uri,
                                       const std::string& keyring, const std::string& suite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* sub :
       {"etc/sources.list.d", "lists/partial", "cache/archives/partial", "state"}) {
    fs::create_directories(fs::path(root) / sub, ec);
    if (ec)
      return make_error(Errc::system_error,
                        fmt::format("creating {}/{}: {}", root, sub, ec.message()));
  }
  if (!fs::exists(root + "/state/status")) {
    auto made = write_file(root + "/state/status", "");
    if (!made) return tl::unexpected(made.error());
  }
  auto wrote = write_file(root + "/etc/sources.list",
                          fmt::format("# Written by scxkit for its own apt runs only.\n"
                                      "deb [arch=amd64 signed-by={}] {} {} main\n",
                                      keyring, uri, suite));
  if (!wrote) return tl::unexpected(wrote.error());
  return PrivateApt(root, uri, suite);
}

std::vector<std::string> PrivateApt::options() const {
  std::vector<std::string> o = {
      "-o",
      "Dir::Etc::SourceList=" + root_ + "/etc/sources.list",
      "-o",
      "Dir::Etc::SourceParts=" + root_ + "/etc/sources.list.d",
      "-o",
      "Dir::State=" + root_ + "/state",
      "-o",
      "Dir::State::Lists=" + root_ + "/lists",
      "-o",
      "Dir::State::status=" + root_ + "/state/status",
      "-o",
      "Dir::Cache=" + root_ + "/cache",
      "-o",
      "APT::Architecture=amd64",
      "-o",
      "APT::Architectures=amd64",
      "-o",
      "Acquire::Languages=none",
      // The private directories are ours alone; the flock in the kernel cache serialises runs.
      "-o",
      "Debug::NoLocking=1",
  };
  // apt drops root to _apt for downloads, which cannot enter a home cache directory.
  if (::geteuid() == 0) {
    o.push_back("-o");
    o.push_back("APT::Sandbox::User=root");
  }
  return o;
}

Result<void> PrivateApt::update(bool show_output) const {
  std::vector<std::string> argv = {"apt-get"};
  const auto opts = options();
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.push_back(show_output ? "-q" : "-qq");
  argv.push_back("update");
  auto run = run_tool({.argv = argv}, Clock::now() + kAptDeadline);
  if (!run) return tl::unexpected(run.error());
  const std::string said = run->out + run->err;
  // apt-get update exits 0 on some fetch failures; W:/E: lines tell.
  if (run->status != 0 || said.find("\nE: ") != std::string::npos || said.rfind("E: ", 0) == 0 ||
      said.find("NO_PUBKEY") != std::string::npos ||
      said.find("W: Failed to fetch") != std::string::npos) {
    std::string hint;
    if (said.find("NO_PUBKEY") != std::string::npos ||
        said.find("not signed") != std::string::npos) {
      hint =
          " (the keyring lacks this suite's signing key: install a newer debian-archive-keyring)";
    }
    return make_error(Errc::system_error, fmt::format("apt-get update of {} {} failed{}: {}", uri_,
                                                      suite_, hint, last_lines(said, 3)));
  }
  if (show_output && !said.empty()) (void)write_all(STDERR_FILENO, said);
  return {};
}

Result<std::vector<std::string>> PrivateApt::package_names(const std::string& prefix) const {
  std::vector<std::string> argv = {"apt-cache"};
  const auto opts = options();
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.push_back("pkgnames");
  argv.push_back(prefix);
  auto run = run_tool({.argv = argv}, Clock::now() + kAptDeadline);
  if (!run) return tl::unexpected(run.error());
  if (run->status != 0) {
    return make_error(Errc::system_error,
                      fmt::format("apt-cache pkgnames failed: {}", last_lines(run->err, 3)));
  }
  std::vector<std::string> names;
  std::istringstream in(run->out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

Result<void> PrivateApt::download(const std::vector<std::string>& packages, const std::string& dir,
                                  bool show_output) const {
  std::vector<std::string> argv = {"apt-get"};
  const auto opts = options();
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.push_back(show_output ? "-q" : "-qq");
  argv.push_back("download");
  argv.insert(argv.end(), packages.begin(), packages.end());
  auto run =
      run_tool({.argv = argv, .cwd = dir, .show_output = show_output}, Clock::now() + kAptDeadline);
  if (!run) return tl::unexpected(run.error());
  if (run->status != 0) {
    return make_error(
        Errc::system_error,
        fmt::format("apt-get download {} from {} failed (exit {}){}{}", fmt::join(packages, " "),
                    uri_, run->status, run->err.empty() ? "" : ": ", last_lines(run->err, 3)));
  }
  return {};
}

Result<void> unpack_deb(const std::string& deb, const std::string& dest) {
  auto run = run_tool({.argv = {"dpkg-deb", "-x", deb, dest}}, Clock::now() + kAptDeadline);
  if (!run) return tl::unexpected(run.error());
  if (run->status != 0) {
    return make_error(Errc::system_error,
                      fmt::format("dpkg-deb -x {} failed: {}", deb, last_lines(run->err, 3)));
  }
  return {};
}

}  // namespace scxkit::vm::internal
