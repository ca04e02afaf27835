#include "control_plane_stub/wire.h"

namespace Proxy::ControlPlane::Wire {
namespace {

constexpr uint32_t kWireTypeLengthDelimited = 2;

void appendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

size_t varintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    size++;
  }
  return size;
}

}  // namespace

void appendLengthDelimited(std::string& out, uint32_t field, std::string_view bytes) {
  appendVarint(out, (static_cast<uint64_t>(field) << 3) | kWireTypeLengthDelimited);
  appendVarint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

size_t lengthDelimitedSize(uint32_t field, size_t length) {
  return varintSize((static_cast<uint64_t>(field) << 3) | kWireTypeLengthDelimited) +
         varintSize(length) + length;
}

uint64_t fnv1a64(std::string_view bytes, uint64_t seed) {
  uint64_t hash = seed;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

std::string hex64(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; i--) {
    out[i] = kDigits[value & 0xf];
    value >>= 4;
  }
  return out;
}

}  // namespace Proxy::ControlPlane::Wire
