#pragma once

// URL path normalisation as Envoy's HTTP connection manager applies it to ":path" before routing
// (HttpConnectionManager normalize_path, merge_slashes, path_with_escaped_slashes_action), so
// that route rules see the path the upstream will act on: "/public/../admin", "/%61dmin" and
// "//admin" all become "/admin". Pure functions of their arguments (no state, no allocation when
// nothing changes), safe from any thread; the behaviour is Envoy 1.40's, case by case (see
// test/unit/http/path_normalization_test.cc, whose expectations come from the real Envoy).

#include <optional>
#include <string>
#include <string_view>

namespace Proxy::Http {

// HttpConnectionManager.PathWithEscapedSlashesAction without IMPLEMENTATION_SPECIFIC_DEFAULT,
// which the config layer maps to KeepUnchanged as Envoy does.
enum class EscapedSlashesAction {
  KeepUnchanged,
  RejectRequest,
  UnescapeAndRedirect,
  UnescapeAndForward
};

struct PathNormalizationOptions {
  bool normalize_path = false;
  bool merge_slashes = false;
  EscapedSlashesAction escaped_slashes_action = EscapedSlashesAction::KeepUnchanged;
};

enum class PathNormalizationAction {
  Continue,  // route and forward `path` (or the unchanged input)
  Reject,    // answer 400: a fragment, "%00", or an escaped slash under RejectRequest
  Redirect,  // answer 307 with Location: `path` (escaped slashes under UnescapeAndRedirect)
};

struct PathNormalizationResult {
  PathNormalizationAction action = PathNormalizationAction::Continue;
  // The new ":path", query included, when it differs from the input (always set for Redirect).
  std::optional<std::string> path;
};

// Normalises a request's ":path" (origin-form, query included) in Envoy's order: reject a
// fragment; unescape %2F/%5C in the path (per the escaped-slashes action); remove dot segments
// and canonicalise escapes (normalize_path); merge slashes (merge_slashes). The query is kept
// byte for byte. A target that is not a path ("*") is left alone.
PathNormalizationResult normalizeRequestPath(std::string_view path,
                                             const PathNormalizationOptions& options);

// The steps, each on a path without its query (exposed for tests and fuzzing).

// Chromium's path canonicalisation as Envoy uses it: RFC 3986 dot-segment removal ("." and ".."
// also when written %2e), '\' as a separator, percent-decoding of the unreserved characters
// (ALPHA DIGIT - . _ ~), other escapes kept as written (case included), characters that may not
// appear in a path escaped as %XX. nullopt when the path cannot be normalised (it holds NUL,
// raw or as %00).
std::optional<std::string> canonicalizePath(std::string_view path);

// Envoy 1.40 also resolves a dot segment that carries parameters ("/..;x/" is "/../") before
// canonicalising, as servlet containers read it: a '/'-separated segment whose text before its
// first ';' is exactly "." or ".." loses the ';' and what follows it.
std::string stripDotSegmentParameters(std::string_view path);

// %2F/%2f -> '/', %5C/%5c -> '\'. Returns whether any was found.
bool unescapeSlashes(std::string& path);

// Runs of '/' become one, keeping a leading and a trailing '/'. Envoy's quirk: the path "//"
// (only slashes) stays "//".
std::string mergeSlashes(std::string_view path);

}  // namespace Proxy::Http
