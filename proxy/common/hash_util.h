#pragma once

// The hashes Envoy's consistent-hashing load balancers and route hash policies use, so that the
// same hosts and the same request pick the same host as Envoy: xxHash64 from Debian's libxxhash
// (Envoy's HashUtil::xxHash64), and libstdc++'s std::hash<std::string> (murmur2-64, the one
// Envoy's MurmurHash::murmurHash2 reproduces, for RingHashLbConfig's MURMUR_HASH_2).

#include <xxhash.h>

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace Proxy::HashUtil {

inline uint64_t xxHash64(std::string_view input, uint64_t seed = 0) {
  return XXH64(input.data(), input.size(), seed);
}

// Several values: each hashed with the previous hash as its seed (Envoy's span form; one value
// gives xxHash64(value)).
inline uint64_t xxHash64(const std::vector<std::string_view>& inputs, uint64_t seed = 0) {
  for (std::string_view input : inputs) {
    seed = xxHash64(input, seed);
  }
  return seed;
}

// libstdc++'s std::hash<std::string_view> is _Hash_bytes(data, size, 0xc70f6907): murmur2-64
// with Envoy's STD_HASH_SEED.
inline uint64_t murmurHash2(std::string_view input) {
  return std::hash<std::string_view>()(input);
}

}  // namespace Proxy::HashUtil
