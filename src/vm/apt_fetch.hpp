// apt through a private configuration: scxkit's own sources file, lists,
// cache and state directories under its cache directory, passed to apt-get
// and apt-cache with -o options. The machine's apt configuration is read
// (proxies and the like still apply) but never written.
#pragma once

#include <string>
#include <vector>

#include "vm/os.hpp"

namespace scxkit::vm::internal {

class PrivateApt {
 public:
  // Creates `root` with etc/sources.list naming `uri` `suite` main (amd64,
  // signed-by `keyring`) and empty lists, cache and state directories.
  static Result<PrivateApt> prepare(const std::string& root, const std::string& uri,
                                    const std::string& keyring, const std::string& suite);

  // apt-get update for the private sources; signature failures are errors.
  Result<void> update(bool show_output) const;
  // Every package name the private lists hold that starts with `prefix`.
  Result<std::vector<std::string>> package_names(const std::string& prefix) const;
  // apt-get download into `dir` (signatures and hashes are checked by apt).
  Result<void> download(const std::vector<std::string>& packages, const std::string& dir,
                        bool show_output) const;

  // The -o options that make apt use only the private configuration.
  std::vector<std::string> options() const;

 private:
  PrivateApt(std::string root, std::string uri, std::string suite)
      : root_(std::move(root)), uri_(std::move(uri)), suite_(std::move(suite)) {}
  std::string root_, uri_, suite_;
};

// dpkg-deb -x: unpacks a package's files under `dest`.
Result<void> unpack_deb(const std::string& deb, const std::string& dest);

}  // namespace scxkit::vm::internal
