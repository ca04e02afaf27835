#pragma once

// HTTP helpers that belong to no one codec (Envoy keeps these in source/common/http/utility.h
// and codes.h): the reason phrase of a status code and a complete local reply through any
// ResponseEncoder. The HTTP/1 codec and the connection manager use them; an HTTP/2 codec can.

#include <cstdint>
#include <string_view>

#include "proxy/http/codec.h"

namespace Proxy::Http::Utility {

// "OK", "Not Found", ...; "Unknown" for codes without a registered phrase.
std::string_view reasonPhrase(uint32_t code);

// Encodes a complete locally generated response through `encoder`: ":status" `code`,
// "content-type: text/plain" when `body` is not empty, content-length, body.
void encodeLocalReply(ResponseEncoder& encoder, uint32_t code, std::string_view body);

}  // namespace Proxy::Http::Utility
