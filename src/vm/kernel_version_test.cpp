#include "vm/kernel_version.hpp"

#include <gtest/gtest.h>

namespace scxkit::vm::internal {
namespace {

// Names as trixie-backports lists them (apt-cache pkgnames linux-), abridged.
const std::vector<std::string> kNames = {
    "linux-image-amd64",
    "linux-image-cloud-amd64",
    "linux-image-6.18.15+deb13-amd64",
    "linux-image-6.18.15+deb13-rt-amd64",
    "linux-binary-7.0.13+deb13-amd64",
    "linux-base-7.0.13+deb13-amd64",
    "linux-image-7.0.13+deb13-amd64",
    "linux-binary-7.2.12+deb13-amd64",
    "linux-binary-7.2.12+deb13-cloud-amd64",
    "linux-binary-unsigned-7.2.12+deb13-amd64",
    "linux-base-7.2.12+deb13-amd64",
    "linux-binary-7.3.4+deb13-amd64",
    "linux-binary-7.3.4+deb13-rt-amd64",
    "linux-image-7.3.4+deb13-amd64-dbg",
    "linux-base-7.3.4+deb13-amd64",
    "linux-binary-7.2.9+deb13-amd64",
};

TEST(KernelVersion, ReleasesAreTheAmd64FlavourOnlyNewestFirst) {
  EXPECT_EQ(
      kernel_releases(kNames),
      (std::vector<std::string>{"7.3.4+deb13-amd64", "7.2.12+deb13-amd64", "7.2.9+deb13-amd64",
                                "7.0.13+deb13-amd64", "6.18.15+deb13-amd64"}));
}

TEST(KernelVersion, OrderIsNumericPerComponent) {
  EXPECT_TRUE(release_less("7.2.9+deb13-amd64", "7.2.12+deb13-amd64"));
  EXPECT_TRUE(release_less("6.19.14+deb13-amd64", "7.0.4+deb13-amd64"));
  EXPECT_TRUE(release_less("7.9.1+deb13-amd64", "7.10.0+deb13-amd64"));
  EXPECT_FALSE(release_less("7.3.4+deb13-amd64", "7.3.4+deb13-amd64"));
  EXPECT_TRUE(release_less("7.3.4+deb13-amd64", "7.3.4+deb14-amd64"));
}

TEST(KernelVersion, TheDefaultIsTheNewest7x) {
  EXPECT_EQ(choose_release(kernel_releases(kNames), ""), "7.3.4+deb13-amd64");
  EXPECT_EQ(choose_release({"6.18.15+deb13-amd64", "8.0.1+deb14-amd64"}, ""), std::nullopt);
}

TEST(KernelVersion, APrefixMatchesOnlyAtAComponentBoundary) {
  const std::vector<std::string> r = {"7.3.4+deb13-amd64", "7.31.1+deb13-amd64",
                                      "7.2.12+deb13-amd64"};
  EXPECT_EQ(choose_release(r, "7.3"), "7.3.4+deb13-amd64");
  EXPECT_EQ(choose_release(r, "7.31"), "7.31.1+deb13-amd64");
  EXPECT_EQ(choose_release(r, "7.2.12+deb13"), "7.2.12+deb13-amd64");
  EXPECT_EQ(choose_release(r, "7.2.12+deb13-amd64"), "7.2.12+deb13-amd64");
  EXPECT_EQ(choose_release(r, "7.2.1"), std::nullopt);
  EXPECT_EQ(choose_release(r, "9"), std::nullopt);
}

TEST(KernelVersion, PackagesFollowDebiansSplitWhenItExists) {
  EXPECT_EQ(
      packages_for_release(kNames, "7.3.4+deb13-amd64"),
      (std::vector<std::string>{"linux-binary-7.3.4+deb13-amd64", "linux-base-7.3.4+deb13-amd64"}));
  EXPECT_EQ(packages_for_release(kNames, "6.18.15+deb13-amd64"),
            std::vector<std::string>{"linux-image-6.18.15+deb13-amd64"});
  EXPECT_EQ(packages_for_release(kNames, "7.2.9+deb13-amd64"),
            std::vector<std::string>{"linux-binary-7.2.9+deb13-amd64"});
  EXPECT_TRUE(packages_for_release(kNames, "5.10.0-amd64").empty());
}

}  // namespace
}  // namespace scxkit::vm::internal
