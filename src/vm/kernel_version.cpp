#include "vm/kernel_version.hpp"

#include <algorithm>
#include <cctype>

namespace scxkit::vm::internal {

namespace {

constexpr std::string_view kFlavour = "-amd64";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "7.3.4+deb13-amd64" -> "7.3.4+deb13"; "" if another flavour.
std::string_view version_of(std::string_view release) {
  if (!ends_with(release, kFlavour)) return {};
  const auto v = release.substr(0, release.size() - kFlavour.size());
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0])) ||
      v.find('-') != std::string_view::npos) {
    return {};
  }
  return v;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> kernel_releases(const std::vector<std::string>& package_names) {
  std::vector<std::string> out;
  for (std::string_view prefix : {"linux-binary-", "linux-image-"}) {
    for (const auto& name : package_names) {
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string release = name.substr(prefix.size());
      if (!version_of(release).empty() && !has(out, release)) out.push_back(release);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return release_less(b, a); });
  return out;
}

bool release_less(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      unsigned long long na = 0, nb = 0;
      while (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i])))
        na = na * 10 + (a[i++] - '0');
      while (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j])))
        nb = nb * 10 + (b[j++] - '0');
      if (na != nb) return na < nb;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

bool release_matches(std::string_view release, std::string_view request) {
  const std::string_view version = version_of(release);
  if (version.empty()) return false;
  if (request.empty()) request = "7";
  if (ends_with(request, kFlavour)) request.remove_suffix(kFlavour.size());
  if (version == request) return true;
  // A prefix counts only at a component boundary: "7.3" matches 7.3.4, not 7.31.
  return version.size() > request.size() && version.substr(0, request.size()) == request &&
         (version[request.size()] == '.' || version[request.size()] == '+');
}

std::optional<std::string> choose_release(const std::vector<std::string>& releases,
                                          std::string_view request) {
  std::optional<std::string> best;
  for (const auto& r : releases) {
    if (release_matches(r, request) && (!best || release_less(*best, r))) best = r;
  }
  return best;
}

std::vector<std::string> packages_for_release(const std::vector<std::string>& package_names,
                                              const std::string& release) {
  if (has(package_names, "linux-binary-" + release)) {
    std::vector<std::string> out{"linux-binary-" + release};
    if (has(package_names, "linux-base-" + release)) out.push_back("linux-base-" + release);
    return out;
  }
  if (has(package_names, "linux-image-" + release)) return {"linux-image-" + release};
  return {};
}

}  // namespace scxkit::vm::internal
