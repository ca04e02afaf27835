#pragma once

// What makes an HTTP header name or value valid, for the codecs (on the wire) and for config
// validation (header names and values in route configurations). Inline: the codecs check every
// header byte.

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace Proxy::HeaderUtility {

// RFC 9110 5.6.2 token characters (tchar): what a header name is made of.
constexpr bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

namespace Detail {
constexpr std::array<char, 256> makeLowerTokenTable() {
  std::array<char, 256> table{};
  for (int i = 0; i < 256; i++) {
    const char c = static_cast<char>(i);
    if (isTokenChar(c)) {
      table[static_cast<size_t>(i)] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  return table;
}
inline constexpr std::array<char, 256> kLowerTokenTable = makeLowerTokenTable();
}  // namespace Detail

// The lower-case form of a token character, or '\0' for a byte that is not one: the HTTP/1
// codec checks and lower-cases every header name byte with one table load.
constexpr char lowerTokenChar(char c) {
  return Detail::kLowerTokenTable[static_cast<uint8_t>(c)];
}

// A header name: one or more token characters. With `allow_pseudo`, an HTTP/2 pseudo-header
// (":path") is a name too.
constexpr bool isValidHeaderName(std::string_view name, bool allow_pseudo = false) {
  if (allow_pseudo && !name.empty() && name.front() == ':') {
    name.remove_prefix(1);
  }
  if (name.empty()) {
    return false;
  }
  for (char c : name) {
    if (!isTokenChar(c)) {
      return false;
    }
  }
  return true;
}

// A value must not smuggle a second header or line into a request: no NUL, CR or LF (what
// Envoy's header validation rejects). The codecs check every value byte: 16 at a time where
// SSE2 is (every x86-64 CPU).
inline bool isValidHeaderValue(std::string_view value) {
  const char* p = value.data();
  size_t n = value.size();
#if defined(__SSE2__)
  const __m128i nul = _mm_setzero_si128();
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  for (; n >= 16; p += 16, n -= 16) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i bad =
        _mm_or_si128(_mm_cmpeq_epi8(block, nul),
                     _mm_or_si128(_mm_cmpeq_epi8(block, cr), _mm_cmpeq_epi8(block, lf)));
    if (_mm_movemask_epi8(bad) != 0) {
      return false;
    }
  }
#endif
  for (; n > 0; p++, n--) {
    if (*p == '\0' || *p == '\r' || *p == '\n') {
      return false;
    }
  }
  return true;
}

// Whether `name` is made only of lower-case letters, digits and '-': the form nearly every header
// name arrives in, which needs no lower-casing and is a valid token. Checked 16 bytes at a time
// where SSE2 is; false (also for an empty name) sends the caller to the per-byte
// lowerTokenChar().
inline bool isPlainLowerCaseName(std::string_view name) {
#if defined(__SSE2__)
  const char* p = name.data();
  size_t n = name.size();
  if (n == 0) {
    return false;
  }
  // Bytes are signed here: 0x80 and up are negative and fall outside every range.
  const __m128i below_a = _mm_set1_epi8('a' - 1);
  const __m128i above_z = _mm_set1_epi8('z' + 1);
  const __m128i below_0 = _mm_set1_epi8('0' - 1);
  const __m128i above_9 = _mm_set1_epi8('9' + 1);
  const __m128i dash = _mm_set1_epi8('-');
  while (n > 0) {
    __m128i block;
    if (n >= 16) {
      block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      p += 16;
      n -= 16;
    } else {
      // The tail, padded with letters (never past the end of the name).
      alignas(16) char tail[16];
      std::memset(tail, 'a', sizeof(tail));
      std::memcpy(tail, p, n);
      block = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
      n = 0;
    }
    const __m128i letter =
        _mm_and_si128(_mm_cmpgt_epi8(block, below_a), _mm_cmplt_epi8(block, above_z));
    const __m128i digit =
        _mm_and_si128(_mm_cmpgt_epi8(block, below_0), _mm_cmplt_epi8(block, above_9));
    const __m128i ok = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(block, dash));
    if (_mm_movemask_epi8(ok) != 0xffff) {
      return false;
    }
  }
  return true;
#else
  (void)name;
  return false;
#endif
}

}  // namespace Proxy::HeaderUtility
