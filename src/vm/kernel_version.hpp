// Which Debian kernel package to take: kernel releases named in package
// names, ordered like versions, matched against what a person asked for.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scxkit::vm::internal {

// The amd64-flavour kernel releases ("7.3.4+deb13-amd64") that a list of
// package names offers as linux-binary-<release> or linux-image-<release>
// (not cloud, rt, unsigned or dbg), newest first, each once.
std::vector<std::string> kernel_releases(const std::vector<std::string>& package_names);

// Version order on releases: numeric dot-separated parts, then the rest.
bool release_less(std::string_view a, std::string_view b);

// Whether a release matches a request: "" means major version 7; "7.3"
// matches 7.3.x; "7.3.4+deb13" and "7.3.4+deb13-amd64" match exactly that.
bool release_matches(std::string_view release, std::string_view request);

// The newest release that matches, if any.
std::optional<std::string> choose_release(const std::vector<std::string>& releases,
                                          std::string_view request);

// The packages that hold a release's vmlinuz and config: linux-binary-R plus
// linux-base-R when the names offer them (Debian's 7.x split), else linux-image-R.
std::vector<std::string> packages_for_release(const std::vector<std::string>& package_names,
                                              const std::string& release);

}  // namespace scxkit::vm::internal
