#include "vm/kernel_image.hpp"

#include <gtest/gtest.h>

#include "vm/os.hpp"

namespace scxkit::vm::internal {
namespace {

// A bzImage header as the x86 boot protocol lays it out, payload after it.
std::string fake_bzimage(std::string_view payload, std::uint16_t protocol = 0x20f) {
  const std::uint8_t setup_sects = 3;
  std::string img((setup_sects + 1) * 512, '\0');
  img[0x1f1] = static_cast<char>(setup_sects);
  img.replace(0x202, 4, "HdrS");
  img[0x206] = static_cast<char>(protocol & 0xff);
  img[0x207] = static_cast<char>(protocol >> 8);
  const std::uint32_t offset = 0x40, length = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) {
    img[0x248 + i] = static_cast<char>((offset >> (8 * i)) & 0xff);
    img[0x24c + i] = static_cast<char>((length >> (8 * i)) & 0xff);
  }
  img += std::string(offset, 'x');
  img += payload;
  img += "tail";
  return img;
}

TEST(KernelImage, FindsThePayloadAndItsCompressor) {
  const std::string zstd = std::string("\x28\xb5\x2f\xfd", 4) + "rest-of-stream";
  auto p = find_payload(fake_bzimage(zstd));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->offset, 4u * 512 + 0x40);
  EXPECT_EQ(p->length, zstd.size());
  EXPECT_EQ(p->tool, "zstd");
  auto gz = find_payload(fake_bzimage(std::string("\x1f\x8b\x08\x00more", 8)));
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->tool, "gzip");
}

TEST(KernelImage, RejectsWhatIsNotABzImageWithAPayload) {
  EXPECT_FALSE(find_payload("short"));
  EXPECT_FALSE(find_payload(std::string(4096, '\0')));
  EXPECT_FALSE(find_payload(fake_bzimage("\x28\xb5\x2f\xfd....", 0x206)))
      << "protocol 2.06 names no payload";
  EXPECT_FALSE(find_payload(fake_bzimage("unknown-compression")));
}

TEST(KernelImage, ReadsAnElfSectionByName) {
  auto self = read_file("/proc/self/exe");
  ASSERT_TRUE(self);
  auto interp = elf_section(*self, ".interp");
  ASSERT_TRUE(interp) << interp.error().message;
  EXPECT_NE(interp->find("ld-linux"), std::string::npos);
  auto none = elf_section(*self, ".no-such-section");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(elf_section("not an elf file at all, not at all", ".BTF"));
}

}  // namespace
}  // namespace scxkit::vm::internal
