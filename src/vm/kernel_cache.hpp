// The per-user kernel cache: $XDG_CACHE_HOME/scxkit (or ~/.cache/scxkit)
// holds kernels/<release>/{vmlinuz,config,vmlinux.btf}, scxkit's private apt
// tree, and a lock file that serialises fetches between processes.
#pragma once

#include <string>
#include <vector>

#include "vm/os.hpp"

namespace scxkit::vm::internal {

// `configured` if set, else $XDG_CACHE_HOME/scxkit, else $HOME/.cache/scxkit.
Result<std::string> cache_root(const std::string& configured);

// Takes the cache's lock (flock, released when the Fd closes or the process
// dies), waiting at most until the deadline.
Result<Fd> lock_cache(const std::string& root, Clock::time_point deadline);

// Releases with a complete kernel in the cache.
std::vector<std::string> cached_releases(const std::string& root);

}  // namespace scxkit::vm::internal
