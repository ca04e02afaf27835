#pragma once

// Deterministic bodies for streaming tests: both ends generate / check the same bytes from an
// offset alone, so a 100 MB body never has to exist in memory, and a 64-bit FNV-1a digest
// proves every byte arrived in order (both ends compute it incrementally).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace Proxy::Integration {

// The byte at `offset` of every generated body: printable, with a period (26) that does not
// divide typical chunk sizes, so a dropped or duplicated chunk changes the digest.
inline char patternByte(uint64_t offset) {
  return static_cast<char>('a' + offset % 26);
}

// Fill `out[0..len)` with the pattern starting at `offset`.
inline void fillPattern(uint64_t offset, char* out, size_t len) {
  for (size_t i = 0; i < len; i++) {
    out[i] = patternByte(offset + i);
  }
}

// Incremental 64-bit FNV-1a.
class Fnv1a {
 public:
  void update(const void* data, size_t len) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < len; i++) {
      hash_ ^= bytes[i];
      hash_ *= 0x100000001b3ULL;
    }
  }
  uint64_t value() const { return hash_; }
  // 16 lower-case hex digits, the form carried in headers.
  std::string hex() const {
    char out[17];
    std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(hash_));
    return out;
  }

 private:
  uint64_t hash_ = 0xcbf29ce484222325ULL;
};

// Digest of the pattern's first `length` bytes, computed the way a receiver would.
inline std::string patternDigest(uint64_t length) {
  Fnv1a fnv;
  char chunk[16384];
  for (uint64_t offset = 0; offset < length;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof(chunk), length - offset));
    fillPattern(offset, chunk, n);
    fnv.update(chunk, n);
    offset += n;
  }
  return fnv.hex();
}

}  // namespace Proxy::Integration
