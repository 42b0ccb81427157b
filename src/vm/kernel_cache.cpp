#include "vm/kernel_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "scxkit/vm.hpp"
#include "vm/apt_fetch.hpp"
#include "vm/apt_sources.hpp"
#include "vm/kernel_image.hpp"
#include "vm/kernel_version.hpp"
#include "vm/process.hpp"

namespace scxkit::vm {

namespace fs = std::filesystem;
using namespace internal;

namespace internal {

Result<std::string> cache_root(const std::string& configured) {
  std::string root = configured;
  if (root.empty()) {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    if (xdg != nullptr && xdg[0] == '/') {
      root = std::string(xdg) + "/scxkit";
    } else if (home != nullptr && home[0] == '/') {
      root = std::string(home) + "/.cache/scxkit";
    } else {
      return make_error(Errc::not_found,
                        "neither XDG_CACHE_HOME nor HOME is set: pass a cache directory");
    }
  }
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return make_error(Errc::system_error, fmt::format("creating {}: {}", root, ec.message()));
  return root;
}

Result<Fd> lock_cache(const std::string& root, Clock::time_point deadline) {
  Fd fd(::open((root + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return os_error(fmt::format("opening {}/lock", root), errno);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return os_error("flock on the kernel cache", errno);
    if (Clock::now() >= deadline) {
      return make_error(Errc::busy, fmt::format("another scxkit holds {}/lock (fetching a kernel?) "
                                                "for too long; try again later",
                                                root));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fd;
}

std::vector<std::string> cached_releases(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/kernels", ec)) {
    if (fs::exists(e.path() / "vmlinuz")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return release_less(b, a); });
  return out;
}

}  // namespace internal

namespace {

Kernel kernel_in(const fs::path& dir, const std::string& release) {
  Kernel k{release, (dir / "vmlinuz").string(), "", "", ""};
  if (fs::exists(dir / "vmlinux")) k.vmlinux = (dir / "vmlinux").string();
  if (fs::exists(dir / "config")) k.config = (dir / "config").string();
  if (fs::exists(dir / "vmlinux.btf")) k.btf = (dir / "vmlinux.btf").string();
  return k;
}

// --kernel PATH: a vmlinuz of the user's, with config and BTF if they sit beside it.
Result<Kernel> kernel_at_path(const std::string& path) {
  if (!fs::is_regular_file(path)) {
    return make_error(Errc::not_found, fmt::format("no kernel image at {}", path));
  }
  const fs::path p = fs::absolute(path);
  Kernel k{p.filename().string(), p.string(), "", "", ""};
  for (const auto& c : {p.parent_path() / "config", fs::path(p.string() + ".config")}) {
    if (k.config.empty() && fs::exists(c)) k.config = c.string();
  }
  if (fs::exists(p.parent_path() / "vmlinux.btf"))
    k.btf = (p.parent_path() / "vmlinux.btf").string();
  return k;
}

struct Suite {
  PrivateApt apt;
  std::vector<std::string> names;
};

Result<Suite> open_suite(const KernelOptions& o, const std::string& root) {
  Mirror mirror;
  if (!o.mirror.empty()) {
    mirror = {o.mirror, "/usr/share/keyrings/debian-archive-keyring.gpg"};
  } else {
    auto found = find_debian_mirror();
    if (!found) return tl::unexpected(found.error());
    mirror = *found;
  }
  if (find_executable("apt-get").empty() || find_executable("dpkg-deb").empty()) {
    return make_error(Errc::not_found,
                      "apt-get and dpkg-deb are needed to fetch a kernel (Debian's apt, dpkg)");
  }
  auto apt = PrivateApt::prepare(root + "/apt", mirror.uri, mirror.keyring, o.suite);
  if (!apt) return tl::unexpected(apt.error());
  if (o.progress)
    o.progress(fmt::format("reading the package lists of {} {}", mirror.uri, o.suite));
  auto updated = apt->update(o.show_tool_output);
  if (!updated) return tl::unexpected(updated.error());
  auto names = apt->package_names("linux-");
  if (!names) return tl::unexpected(names.error());
  return Suite{std::move(*apt), std::move(*names)};
}

// The first file under `tree` whose path ends with one of the suffixes.
std::string find_in_tree(const fs::path& tree, const std::vector<std::string>& suffixes) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec || !it->is_regular_file()) continue;
    const std::string p = it->path().string();
    for (const auto& s : suffixes) {
      if (p.size() >= s.size() && p.compare(p.size() - s.size(), s.size(), s) == 0) return p;
    }
  }
  return "";
}

Result<Kernel> fetch_release(const KernelOptions& o, const std::string& root, const Suite& suite,
                             const std::string& release) {
  const auto packages = packages_for_release(suite.names, release);
  const fs::path staging = fs::path(root) / "tmp" / fmt::format("{}.{}", release, ::getpid());
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging / "tree", ec);
  if (ec)
    return make_error(Errc::system_error,
                      fmt::format("creating {}: {}", staging.string(), ec.message()));
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{staging};

  if (o.progress) o.progress(fmt::format("downloading {}", fmt::join(packages, " ")));
  auto got = suite.apt.download(packages, staging.string(), o.show_tool_output);
  if (!got) return tl::unexpected(got.error());
  for (const auto& e : fs::directory_iterator(staging, ec)) {
    if (e.path().extension() != ".deb") continue;
    auto unpacked = unpack_deb(e.path().string(), (staging / "tree").string());
    if (!unpacked) return tl::unexpected(unpacked.error());
  }
  // Debian 7.x: usr/lib/modules/R/{vmlinuz,config}; older: boot/{vmlinuz,config}-R.
  const std::string vmlinuz =
      find_in_tree(staging / "tree", {"/" + release + "/vmlinuz", "/vmlinuz-" + release});
  const std::string config =
      find_in_tree(staging / "tree", {"/" + release + "/config", "/config-" + release});
  if (vmlinuz.empty()) {
    return make_error(Errc::not_found,
                      fmt::format("{} hold no vmlinuz for {}", fmt::join(packages, " "), release));
  }
  const fs::path kernel_dir = staging / "kernel";
  fs::create_directories(kernel_dir, ec);
  fs::rename(vmlinuz, kernel_dir / "vmlinuz", ec);
  if (!ec && !config.empty()) fs::rename(config, kernel_dir / "config", ec);
  if (ec)
    return make_error(Errc::system_error, fmt::format("moving the kernel files: {}", ec.message()));
  if (o.progress) o.progress("unpacking the vmlinux and its BTF");
  const std::string vmlinux = (kernel_dir / "vmlinux").string();
  auto unpacked = unpack_vmlinux((kernel_dir / "vmlinuz").string(), staging.string(), vmlinux);
  if (!unpacked) return tl::unexpected(unpacked.error());
  auto elf = read_file(vmlinux);
  if (!elf) return tl::unexpected(elf.error());
  auto btf = elf_section(*elf, ".BTF");
  if (!btf) return tl::unexpected(btf.error());
  if (btf->empty()) {
    return make_error(Errc::not_found,
                      fmt::format("the vmlinux of {} has no .BTF section (a kernel "
                                  "built without CONFIG_DEBUG_INFO_BTF)",
                                  release));
  }
  auto wrote = write_file((kernel_dir / "vmlinux.btf").string(), *btf);
  if (!wrote) return tl::unexpected(wrote.error());
  // Keep the vmlinux only if QEMU can boot it directly (PVH).
  if (!has_pvh_entry(*elf)) fs::remove(vmlinux, ec);
  (void)write_file((kernel_dir / "packages").string(),
                   fmt::format("{}\n", fmt::join(packages, "\n")));

  const fs::path final_dir = fs::path(root) / "kernels" / release;
  fs::create_directories(final_dir.parent_path(), ec);
  fs::remove_all(final_dir, ec);  // a partial one (no vmlinuz) from an older scxkit
  fs::rename(kernel_dir, final_dir, ec);
  if (ec)
    return make_error(Errc::system_error,
                      fmt::format("installing {}: {}", final_dir.string(), ec.message()));
  if (o.progress) o.progress(fmt::format("cached {} in {}", release, final_dir.string()));
  return kernel_in(final_dir, release);
}

std::string describe_available(const std::vector<std::string>& releases) {
  if (releases.empty()) return "it offers no amd64 kernel at all";
  const std::size_t n = std::min<std::size_t>(releases.size(), 12);
  return fmt::format("available: {}{}",
                     fmt::join(releases.begin(), releases.begin() + static_cast<long>(n), ", "),
                     releases.size() > n ? ", ..." : "");
}

bool is_path(const std::string& spec) {
  return spec.find('/') != std::string::npos || fs::is_regular_file(spec);
}

}  // namespace

Result<Kernel> ensure_kernel(const KernelOptions& o) {
  if (is_path(o.spec)) return kernel_at_path(o.spec);
  auto root = cache_root(o.cache_dir);
  if (!root) return tl::unexpected(root.error());
  auto from_cache = [&]() -> std::optional<Kernel> {
    if (auto r = choose_release(cached_releases(*root), o.spec)) {
      return kernel_in(fs::path(*root) / "kernels" / *r, *r);
    }
    return std::nullopt;
  };
  if (!o.refresh) {
    if (auto k = from_cache()) return *k;
  }
  auto lock = lock_cache(*root, Clock::now() + std::chrono::minutes(15));
  if (!lock) return tl::unexpected(lock.error());
  // Whatever is in tmp/ now was left by a process that died holding the lock.
  std::error_code ec;
  fs::remove_all(fs::path(*root) / "tmp", ec);
  if (!o.refresh) {
    if (auto k = from_cache()) return *k;  // fetched while we waited for the lock
  }
  auto suite = open_suite(o, *root);
  if (!suite) return tl::unexpected(suite.error());
  const auto releases = kernel_releases(suite->names);
  const auto release = choose_release(releases, o.spec);
  if (!release) {
    return make_error(
        Errc::not_found,
        fmt::format("{} has no amd64 kernel matching '{}'; {}", o.suite,
                    o.spec.empty() ? "7 (the default)" : o.spec, describe_available(releases)));
  }
  if (fs::exists(fs::path(*root) / "kernels" / *release / "vmlinuz")) {
    return kernel_in(fs::path(*root) / "kernels" / *release, *release);
  }
  return fetch_release(o, *root, *suite, *release);
}

Result<KernelListing> list_kernels(const KernelOptions& o) {
  auto root = cache_root(o.cache_dir);
  if (!root) return tl::unexpected(root.error());
  KernelListing listing;
  listing.cached = cached_releases(*root);
  auto lock = lock_cache(*root, Clock::now() + std::chrono::minutes(15));
  if (!lock) return tl::unexpected(lock.error());
  auto suite = open_suite(o, *root);
  if (!suite) return tl::unexpected(suite.error());
  listing.available = kernel_releases(suite->names);
  return listing;
}

}  // namespace scxkit::vm
