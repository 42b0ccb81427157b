// A second process for the arena cmask tests.
//
//   cmask_peer NAME ADDRESS    open the arena NAME, read the cmask at ADDRESS
//                              (hex, the BPF/user form) and print its cids
//                              as a list ("0-3,8"). Exit 0 when that worked.
#include <cstdio>
#include <cstdlib>

#include "scxkit/arena.hpp"
#include "scxkit/cmask.hpp"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  auto arena = scxkit::Arena::open(argv[1]);
  if (!arena) return 3;
  const auto offset = static_cast<std::uint32_t>(std::strtoull(argv[2], nullptr, 16));
  auto* header = static_cast<std::byte*>(arena->user_addr(offset));
  // The header says how large the cmask is; attach checks it against that.
  const auto* h = reinterpret_cast<const scxkit::CmaskHeader*>(header);
  auto mask =
      scxkit::Cmask::attach({header, scxkit::kCmaskHeaderBytes + std::size_t{h->alloc_words} * 8});
  if (!mask) return 4;
  std::printf("%s\n", mask->to_cidlist().c_str());
  return 0;
}
