#include "proxy/http/path_normalization.h"

#include <array>
#include <cstdint>

namespace Proxy::Http {
namespace {

// What canonicalizePath() does with a byte of the path. The classes are those of the Chromium
// path canonicaliser that Envoy runs (and which it inherited from what IE did), checked byte by
// byte against Envoy 1.40: the unreserved characters are decoded when escaped, the characters
// below are escaped when raw, NUL fails, everything else passes as it is.
enum class CharClass : uint8_t {
  Pass,        // copied; an escape of it is kept as written
  Unreserved,  // ALPHA DIGIT - _ ~ : copied; an escape of it is decoded
  Escape,      // written as %XX (upper-case hex)
  Invalid,     // NUL: the path cannot be normalised
  Special,     // '.', '%', '\': handled by the canonicaliser itself
};

constexpr std::array<CharClass, 256> makeCharClasses() {
  std::array<CharClass, 256> table{};
  for (int c = 0; c < 256; c++) {
    table[c] = CharClass::Pass;
  }
  for (int c = 0x01; c < 0x20; c++) {
    table[c] = CharClass::Escape;
  }
  for (int c = 0x7f; c < 0x100; c++) {
    table[c] = CharClass::Escape;
  }
  for (unsigned char c : std::string_view(" \"#<>?^`{|}")) {
    table[c] = CharClass::Escape;
  }
  for (int c = 'a'; c <= 'z'; c++) {
    table[c] = CharClass::Unreserved;
    table[c - 'a' + 'A'] = CharClass::Unreserved;
  }
  for (int c = '0'; c <= '9'; c++) {
    table[c] = CharClass::Unreserved;
  }
  table['-'] = CharClass::Unreserved;
  table['_'] = CharClass::Unreserved;
  table['~'] = CharClass::Unreserved;
  table['.'] = CharClass::Special;
  table['%'] = CharClass::Special;
  table['\\'] = CharClass::Special;
  table[0] = CharClass::Invalid;
  return table;
}

constexpr std::array<CharClass, 256> kCharClasses = makeCharClasses();

bool isSlash(char c) {
  return c == '/' || c == '\\';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// The byte that s[pos..pos+2] = "%XY" encodes, or -1 when it is not a valid escape.
int decodeEscape(std::string_view s, size_t pos) {
  if (pos + 3 > s.size() || s[pos] != '%') {
    return -1;
  }
  const int high = hexValue(s[pos + 1]);
  const int low = hexValue(s[pos + 2]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

void appendEscaped(unsigned char c, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xf]);
}

// Length of the dot at s[pos]: 1 for ".", 3 for "%2e" / "%2E", 0 when there is none.
size_t dotLength(std::string_view s, size_t pos) {
  if (pos < s.size() && s[pos] == '.') {
    return 1;
  }
  if (pos + 3 <= s.size() && s[pos] == '%' && s[pos + 1] == '2' &&
      (s[pos + 2] == 'e' || s[pos + 2] == 'E')) {
    return 3;
  }
  return 0;
}

enum class DotSegment { NotOne, Current, Parent };

// Called with what follows a dot that starts a segment: is it "." or ".."? `consumed` is how
// much of `rest` belongs to the segment (the second dot and the separator).
DotSegment classifyAfterDot(std::string_view rest, size_t& consumed) {
  consumed = 0;
  if (rest.empty()) {
    return DotSegment::Current;
  }
  if (isSlash(rest[0])) {
    consumed = 1;
    return DotSegment::Current;
  }
  const size_t second = dotLength(rest, 0);
  if (second > 0) {
    if (rest.size() == second) {
      consumed = second;
      return DotSegment::Parent;
    }
    if (isSlash(rest[second])) {
      consumed = second + 1;
      return DotSegment::Parent;
    }
  }
  return DotSegment::NotOne;
}

// `out` ends with '/': drop the last segment, keeping the slash before it. Never above the root
// ("/.." is "/").
void backUpToPreviousSlash(std::string& out) {
  size_t i = out.size() - 1;
  if (i == 0) {
    return;
  }
  do {
    i--;
  } while (out[i] != '/' && i > 0);
  out.resize(i + 1);
}

// A '%' that began no valid escape (at `bad_percent` in `out`) can become one once the
// characters after it are decoded: "%%32%65" would read "%2e" and decode to "." the next time
// someone decodes the path. When the character just decoded (and, if needed, the next input
// byte) completes such an escape, the '%' is written as "%25" instead ("%252e"). Chromium's rule,
// kept because Envoy's output depends on it.
void escapeNestedPercent(std::string_view in, size_t next, size_t bad_percent, std::string& out) {
  const size_t length = out.size();
  const char last = out.back();
  const bool append_next = bad_percent == length - 2;  // out ends "%c": look at the next input byte
  if (append_next) {
    if (next == in.size() || static_cast<unsigned char>(in[next]) >= 0x80) {
      return;
    }
    out.push_back(in[next]);
  }
  if (decodeEscape(out, bad_percent) >= 0) {
    if (!append_next) {
      out.push_back(out[bad_percent + 1]);
    }
    out[bad_percent + 1] = '2';
    out[bad_percent + 2] = '5';
    out.push_back(last);
  } else if (append_next) {
    out.resize(length);  // the next byte is processed by the caller as usual
  }
}

// True when canonicalizePath() would return `path` unchanged (no dot, escape, backslash or
// character to escape): the common case costs one scan and no allocation.
bool alreadyCanonical(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return false;
  }
  for (unsigned char c : path) {
    const CharClass cls = kCharClasses[c];
    if (cls != CharClass::Pass && cls != CharClass::Unreserved) {
      return false;
    }
  }
  return true;
}

size_t countEscapedSlashes(std::string_view path) {
  size_t count = 0;
  for (size_t i = 0; i + 2 < path.size(); i++) {
    if (path[i] == '%' && ((path[i + 1] == '2' && (path[i + 2] == 'f' || path[i + 2] == 'F')) ||
                           (path[i + 1] == '5' && (path[i + 2] == 'c' || path[i + 2] == 'C')))) {
      count++;
    }
  }
  return count;
}

}  // namespace

std::optional<std::string> canonicalizePath(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 1);
  if (in.empty() || !isSlash(in[0])) {
    out.push_back('/');
  }
  bool valid = true;
  // Where in `out` the last '%' that began no valid escape is; npos when there is none.
  size_t bad_percent = std::string::npos;
  for (size_t i = 0; i < in.size(); i++) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    const CharClass cls = kCharClasses[c];
    if (cls == CharClass::Pass || cls == CharClass::Unreserved) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    if (const size_t dot = dotLength(in, i); dot > 0) {
      if (out.back() != '/') {
        out.push_back('.');  // a dot inside a segment ("a.b", "a%2eb")
        i += dot - 1;
        continue;
      }
      size_t consumed = 0;
      switch (classifyAfterDot(in.substr(i + dot), consumed)) {
        case DotSegment::NotOne:
          out.push_back('.');
          i += dot - 1;
          break;
        case DotSegment::Current:
          i += dot + consumed - 1;
          break;
        case DotSegment::Parent:
          backUpToPreviousSlash(out);
          if (bad_percent != std::string::npos && bad_percent >= out.size()) {
            bad_percent = std::string::npos;  // that '%' was in the segment just removed
          }
          i += dot + consumed - 1;
          break;
      }
      continue;
    }
    switch (cls) {
      case CharClass::Special:
        if (c == '\\') {
          out.push_back('/');
        } else if (const int value = decodeEscape(in, i); value < 0) {
          bad_percent = out.size();  // a '%' that begins no escape is kept as it is
          out.push_back('%');
        } else {
          const CharClass decoded = kCharClasses[value];
          if (decoded == CharClass::Unreserved) {
            out.push_back(static_cast<char>(value));
            if (bad_percent != std::string::npos && bad_percent + 3 >= out.size()) {
              escapeNestedPercent(in, i + 3, bad_percent, out);
            }
          } else {
            out.append(in.substr(i, 3));  // kept as written, hex case included
            if (decoded == CharClass::Invalid) {
              valid = false;
            }
          }
          i += 2;
        }
        break;
      case CharClass::Invalid:
        appendEscaped(c, out);
        valid = false;
        break;
      case CharClass::Escape:
        appendEscaped(c, out);
        break;
      case CharClass::Pass:
      case CharClass::Unreserved:
        break;  // handled above
    }
  }
  if (!valid) {
    return std::nullopt;
  }
  return out;
}

std::string stripDotSegmentParameters(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view segment = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    const size_t semicolon = segment.find(';');
    const std::string_view name = segment.substr(0, semicolon);
    out.append(semicolon != std::string_view::npos && (name == "." || name == "..") ? name
                                                                                    : segment);
    if (slash == std::string_view::npos) {
      return out;
    }
    out.push_back('/');
    start = slash + 1;
  }
}

bool unescapeSlashes(std::string& path) {
  if (countEscapedSlashes(path) == 0) {
    return false;
  }
  size_t write = 0;
  for (size_t read = 0; read < path.size(); read++) {
    if (path[read] == '%' && read + 2 < path.size()) {
      const char c1 = path[read + 1];
      const char c2 = path[read + 2];
      if (c1 == '2' && (c2 == 'f' || c2 == 'F')) {
        path[write++] = '/';
        read += 2;
        continue;
      }
      if (c1 == '5' && (c2 == 'c' || c2 == 'C')) {
        path[write++] = '\\';
        read += 2;
        continue;
      }
    }
    path[write++] = path[read];
  }
  path.resize(write);
  return true;
}

std::string mergeSlashes(std::string_view path) {
  if (path.find("//") == std::string_view::npos) {
    return std::string(path);
  }
  // Envoy joins the non-empty segments with '/' and puts back a leading and a trailing '/': a
  // path of slashes only has no segment, so "//" and "///" both come out as "//".
  std::string out;
  out.reserve(path.size());
  if (path.front() == '/') {
    out.push_back('/');
  }
  bool first = true;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      slash = path.size();
    }
    if (slash > start) {
      if (!first) {
        out.push_back('/');
      }
      out.append(path.substr(start, slash - start));
      first = false;
    }
    start = slash + 1;
  }
  if (path.back() == '/') {
    out.push_back('/');
  }
  return out;
}

PathNormalizationResult normalizeRequestPath(std::string_view path,
                                             const PathNormalizationOptions& options) {
  PathNormalizationResult result;
  // A fragment is never sent on the wire (RFC 9110 4.2.4): Envoy refuses one, whatever the
  // options, rather than guess what the upstream would make of it.
  if (path.find('#') != std::string_view::npos) {
    result.action = PathNormalizationAction::Reject;
    return result;
  }
  if (path.empty() || path[0] != '/') {
    return result;  // "*" of OPTIONS: not a path
  }
  const size_t query_start = path.find('?');
  const std::string_view query =
      query_start == std::string_view::npos ? std::string_view() : path.substr(query_start);
  std::string_view current = path.substr(0, query_start);
  std::string buffer;  // holds `current` once a step changed it

  if (options.escaped_slashes_action != EscapedSlashesAction::KeepUnchanged &&
      countEscapedSlashes(current) > 0) {
    if (options.escaped_slashes_action == EscapedSlashesAction::RejectRequest) {
      result.action = PathNormalizationAction::Reject;
      return result;
    }
    if (options.escaped_slashes_action == EscapedSlashesAction::UnescapeAndRedirect) {
      result.action = PathNormalizationAction::Redirect;
    }
    buffer = std::string(current);
    unescapeSlashes(buffer);
    current = buffer;
  }

  if (options.normalize_path && !alreadyCanonical(current)) {
    std::optional<std::string> canonical = canonicalizePath(stripDotSegmentParameters(current));
    if (!canonical.has_value()) {
      result.action = PathNormalizationAction::Reject;
      return result;
    }
    buffer = std::move(*canonical);
    current = buffer;
  }

  if (options.merge_slashes && current.find("//") != std::string_view::npos) {
    buffer = mergeSlashes(current);
    current = buffer;
  }

  if (current != path.substr(0, query_start) ||
      result.action == PathNormalizationAction::Redirect) {
    std::string full(current);
    full.append(query);
    result.path = std::move(full);
  }
  return result;
}

}  // namespace Proxy::Http
