#pragma once

// Helpers the harnesses share: a check that crashes the fuzzer on a broken invariant (in
// release builds too), and a deterministic splitter that turns the input's first bytes into
// the sizes of the reads a socket might deliver.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

namespace Proxy::Fuzz {

// Reads a little-endian seed from the front of the input, then hands out chunk sizes from
// 1 to 255 bytes (or the whole rest, when the seed says so), so the same input always splits
// the same way and the fuzzer can explore splits by mutating the seed.
class Splitter {
 public:
  Splitter(const uint8_t*& data, size_t& size) {
    for (int i = 0; i < 4 && size > 0; i++, data++, size--) {
      state_ = (state_ << 8) | *data;
    }
    whole_ = (state_ & 0xff) == 0;
  }
  size_t next(size_t remaining) {
    if (whole_) {
      return remaining;
    }
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    const size_t n = 1 + static_cast<size_t>((state_ >> 33) % 255);
    return n < remaining ? n : remaining;
  }
  // One pseudo-random bit, for choices such as "answer inside dispatch() or after it".
  bool bit() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state_ >> 40) & 1;
  }

 private:
  uint64_t state_ = 0;
  bool whole_ = false;
};

}  // namespace Proxy::Fuzz
