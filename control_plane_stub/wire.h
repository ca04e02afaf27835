#pragma once

// Hand-assembled protobuf wire format for the responses the control plane sends. A response is
// built from resources that were serialized once per snapshot, so that pushing one snapshot to
// a thousand streams copies bytes (or shares them) instead of re-serializing messages: protobuf
// allows a message's fields to be written in any order and split across concatenated buffers.

#include <cstdint>
#include <string>
#include <string_view>

namespace Proxy::ControlPlane::Wire {

// Field numbers of the messages we assemble (upstream envoy/service/discovery/v3/discovery.proto).
namespace DiscoveryResponse {
inline constexpr uint32_t kVersionInfo = 1;
inline constexpr uint32_t kResources = 2;
inline constexpr uint32_t kTypeUrl = 4;
inline constexpr uint32_t kNonce = 5;
}  // namespace DiscoveryResponse

namespace DeltaDiscoveryResponse {
inline constexpr uint32_t kSystemVersionInfo = 1;
inline constexpr uint32_t kResources = 2;
inline constexpr uint32_t kTypeUrl = 4;
inline constexpr uint32_t kNonce = 5;
inline constexpr uint32_t kRemovedResources = 6;
}  // namespace DeltaDiscoveryResponse

namespace Resource {
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kResource = 2;
inline constexpr uint32_t kName = 3;
}  // namespace Resource

// Appends a length-delimited field (string, bytes or embedded message): tag, length, bytes.
void appendLengthDelimited(std::string& out, uint32_t field, std::string_view bytes);
// The size appendLengthDelimited() adds.
size_t lengthDelimitedSize(uint32_t field, size_t length);

// FNV-1a, 64 bit: a stable hash (the same in every process and build), so resource versions
// survive a control-plane restart and a client's initial_resource_versions can be honoured.
uint64_t fnv1a64(std::string_view bytes, uint64_t seed = 14695981039346656037ULL);
// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace Proxy::ControlPlane::Wire
