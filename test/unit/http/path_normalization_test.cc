// Path normalisation, case by case against Envoy 1.40. The expectations written out below are
// what the real Envoy forwarded (or answered) for the same request target and options; the last
// test replays the whole recorded table (testdata/path_normalization_envoy.tsv, recorded by
// test/interop/envoy_path_normalization/compare.py: 674 targets x 21 option combinations).

#include "proxy/http/path_normalization.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace Proxy::Http {
namespace {

// What Envoy does with a request for `path` under `options`, written as in the table: the path
// the upstream receives, "400", or "307 <Location>".
std::string outcome(std::string_view path, const PathNormalizationOptions& options) {
  const PathNormalizationResult result = normalizeRequestPath(path, options);
  switch (result.action) {
    case PathNormalizationAction::Reject:
      return "400";
    case PathNormalizationAction::Redirect:
      return "307 " + result.path.value_or("<no location>");
    case PathNormalizationAction::Continue:
      break;
  }
  return result.path.has_value() ? *result.path : std::string(path);
}

PathNormalizationOptions options(
    bool normalize_path, bool merge_slashes,
    EscapedSlashesAction action = EscapedSlashesAction::KeepUnchanged) {
  PathNormalizationOptions o;
  o.normalize_path = normalize_path;
  o.merge_slashes = merge_slashes;
  o.escaped_slashes_action = action;
  return o;
}

const PathNormalizationOptions kDefaults = options(false, false);
const PathNormalizationOptions kNormalize =
    options(/*normalize_path=*/true, /*merge_slashes=*/false);
const PathNormalizationOptions kMerge = options(/*normalize_path=*/false, /*merge_slashes=*/true);
const PathNormalizationOptions kBoth = options(/*normalize_path=*/true, /*merge_slashes=*/true);

// ---- The bypasses of the hardening issue ------------------------------------------------------

TEST(PathNormalizationTest, TheThreeRouteBypassesBecomeAdmin) {
  // With Envoy's defaults nothing changes: a route for /admin does not see these.
  EXPECT_EQ(outcome("/public/../admin/secret", kDefaults), "/public/../admin/secret");
  EXPECT_EQ(outcome("/%61dmin/secret", kDefaults), "/%61dmin/secret");
  EXPECT_EQ(outcome("//admin/secret", kDefaults), "//admin/secret");
  // normalize_path removes the dot segments and decodes the unreserved "%61"...
  EXPECT_EQ(outcome("/public/../admin/secret", kNormalize), "/admin/secret");
  EXPECT_EQ(outcome("/%61dmin/secret", kNormalize), "/admin/secret");
  // ...but keeps "//" (it is a valid, empty segment): merge_slashes folds it.
  EXPECT_EQ(outcome("//admin/secret", kNormalize), "//admin/secret");
  EXPECT_EQ(outcome("//admin/secret", kMerge), "/admin/secret");
  for (std::string_view bypass : {"/public/../admin/secret", "/%61dmin/secret", "//admin/secret"}) {
    EXPECT_EQ(outcome(bypass, kBoth), "/admin/secret") << bypass;
  }
}

TEST(PathNormalizationTest, NothingToDoAllocatesNothing) {
  // Already-normal paths come back without a new string: the request keeps its header.
  for (const PathNormalizationOptions& o : {kDefaults, kNormalize, kMerge, kBoth}) {
    const PathNormalizationResult result = normalizeRequestPath("/service/1/items?x=1", o);
    EXPECT_EQ(result.action, PathNormalizationAction::Continue);
    EXPECT_FALSE(result.path.has_value());
  }
  // "*" (OPTIONS *) is not a path.
  EXPECT_FALSE(normalizeRequestPath("*", kBoth).path.has_value());
}

// ---- normalize_path: RFC 3986 dot segments ----------------------------------------------------

TEST(PathNormalizationTest, DotSegmentsAreRemoved) {
  EXPECT_EQ(outcome("/a/./b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/a/b/..", kNormalize), "/a/");
  EXPECT_EQ(outcome("/a/b/../", kNormalize), "/a/");
  EXPECT_EQ(outcome("/a/./././b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/a/b/../../../admin", kNormalize), "/admin");
  // ".." never climbs above the root.
  EXPECT_EQ(outcome("/..", kNormalize), "/");
  EXPECT_EQ(outcome("/../a", kNormalize), "/a");
  EXPECT_EQ(outcome("/a/../../b", kNormalize), "/b");
  EXPECT_EQ(outcome("/.", kNormalize), "/");
  EXPECT_EQ(outcome("/./", kNormalize), "/");
  // Only whole segments: these are names.
  EXPECT_EQ(outcome("/a/.../b", kNormalize), "/a/.../b");
  EXPECT_EQ(outcome("/a/.x/b", kNormalize), "/a/.x/b");
  EXPECT_EQ(outcome("/a/x./b", kNormalize), "/a/x./b");
  // Empty segments are kept by normalize_path (merge_slashes is the option that folds them).
  EXPECT_EQ(outcome("/a/.//b", kNormalize), "/a//b");
  EXPECT_EQ(outcome("/a//..//b", kNormalize), "/a//b");
  EXPECT_EQ(outcome("/a/..//b", kNormalize), "//b");
  EXPECT_EQ(outcome("/a/..//b", kBoth), "/b");
}

TEST(PathNormalizationTest, EscapedDotsAreDots) {
  EXPECT_EQ(outcome("/a/%2e%2e/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/%2E%2E/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/.%2e/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/%2e./b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/%2E/b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/%2e%2e/admin", kNormalize), "/admin");
  // Inside a name an escaped dot is decoded like any unreserved character.
  EXPECT_EQ(outcome("/a%2eb", kNormalize), "/a.b");
  EXPECT_EQ(outcome("/a/%2e%2e%2fadmin", kNormalize), "/a/..%2fadmin");
  // A double escape is data, not a dot.
  EXPECT_EQ(outcome("/a/%252e%252e/admin", kNormalize), "/a/%252e%252e/admin");
}

TEST(PathNormalizationTest, DotSegmentsWithParametersAreDotSegments) {
  // Envoy 1.40 reads "..;x" as a servlet container does: "..".
  EXPECT_EQ(outcome("/a/..;/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/..;x/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/..;x;y/b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/.;x/b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/a/.;.;/b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/..;/admin", kNormalize), "/admin");
  EXPECT_EQ(outcome("/a/..;x", kNormalize), "/");
  // The parameters end at the next '/' only: a backslash in them is dropped with them.
  EXPECT_EQ(outcome("/a/..;\\b", kNormalize), "/");
  EXPECT_EQ(outcome("/a/..;%2f/b", kNormalize), "/b");
  // Only literal dots, only whole segments, and never in the query.
  EXPECT_EQ(outcome("/a/%2e%2e;x/b", kNormalize), "/a/..;x/b");
  EXPECT_EQ(outcome("/a/b..;/c", kNormalize), "/a/b..;/c");
  EXPECT_EQ(outcome("/a/...;/b", kNormalize), "/a/...;/b");
  EXPECT_EQ(outcome("/a/;x/b", kNormalize), "/a/;x/b");
  EXPECT_EQ(outcome("/a;b=c/../d", kNormalize), "/d");
  EXPECT_EQ(outcome("/a/..;x?q=/..;/", kNormalize), "/?q=/..;/");
  // The building block on its own.
  EXPECT_EQ(stripDotSegmentParameters("/a/..;x/.;y/b;z/..;"), "/a/.././b;z/..");
}

TEST(PathNormalizationTest, BackslashIsASeparator) {
  EXPECT_EQ(outcome("/a\\b", kNormalize), "/a/b");
  EXPECT_EQ(outcome("/public\\..\\admin\\secret", kNormalize), "/admin/secret");
  EXPECT_EQ(outcome("/a\\..\\b", kNormalize), "/b");
  EXPECT_EQ(outcome("/a/..\\b", kNormalize), "/b");
  // Without normalize_path it is an ordinary byte.
  EXPECT_EQ(outcome("/a\\b", kMerge), "/a\\b");
}

// ---- normalize_path: escapes ------------------------------------------------------------------

TEST(PathNormalizationTest, UnreservedEscapesAreDecodedOthersKeptAsWritten) {
  EXPECT_EQ(outcome("/%7euser", kNormalize), "/~user");
  EXPECT_EQ(outcome("/%41%42", kNormalize), "/AB");
  EXPECT_EQ(outcome("/%2d%2e%5f%7e", kNormalize), "/-._~");
  EXPECT_EQ(outcome("/adm%69n", kNormalize), "/admin");
  // Reserved and other escapes stay, and Envoy keeps their hex digits' case (RFC 3986 6.2.2.1
  // would upper-case them; Envoy does not, and neither do we).
  EXPECT_EQ(outcome("/a%3fb", kNormalize), "/a%3fb");
  EXPECT_EQ(outcome("/a%3ab", kNormalize), "/a%3ab");
  EXPECT_EQ(outcome("/%ff", kNormalize), "/%ff");
  EXPECT_EQ(outcome("/a%20b", kNormalize), "/a%20b");
  EXPECT_EQ(outcome("/a%2520b", kNormalize), "/a%2520b");
  // Escaped slashes are not separators for normalize_path (that is the escaped-slashes action).
  EXPECT_EQ(outcome("/a%2fb", kNormalize), "/a%2fb");
  EXPECT_EQ(outcome("/public/..%2fadmin/secret", kNormalize), "/public/..%2fadmin/secret");
}

TEST(PathNormalizationTest, EveryEscapedByteAsEnvoyTreatsIt) {
  // For each byte, "/x%XXy" in both hex cases: exactly these are decoded (the unreserved set;
  // "." too, as a dot), NUL cannot be normalised, the rest stays as written.
  const std::string decoded = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";
  static constexpr char kHexLower[] = "0123456789abcdef";
  static constexpr char kHexUpper[] = "0123456789ABCDEF";
  for (int byte = 0; byte < 256; byte++) {
    for (const char* hex : {kHexLower, kHexUpper}) {
      const std::string input = std::string("/x%") + hex[byte >> 4] + hex[byte & 0xf] + "y";
      std::string expected = input;
      if (byte == 0) {
        expected = "400";
      } else if (decoded.find(static_cast<char>(byte)) != std::string::npos) {
        expected = std::string("/x") + static_cast<char>(byte) + "y";
      }
      EXPECT_EQ(outcome(input, kNormalize), expected) << input;
    }
  }
}

TEST(PathNormalizationTest, CharactersThatMayNotAppearInAPathAreEscaped) {
  // Printable ASCII, raw: these nine are escaped (upper-case hex), '\' is a separator and '#'
  // starts a fragment; every other one passes. (Controls, space and bytes >= 0x80 never get
  // here through Envoy: its codec refuses them; canonicalizePath escapes them, NUL fails.)
  const std::map<char, std::string> escaped = {{'"', "%22"}, {'<', "%3C"}, {'>', "%3E"},
                                               {'^', "%5E"}, {'`', "%60"}, {'{', "%7B"},
                                               {'|', "%7C"}, {'}', "%7D"}, {'\\', "/"}};
  for (char c = 0x21; c < 0x7f; c++) {
    const std::string input = std::string("/x") + c + "y";
    std::string expected = input;
    if (c == '#') {
      expected = "400";
    } else if (auto it = escaped.find(c); it != escaped.end()) {
      expected = "/x" + it->second + "y";
    }
    EXPECT_EQ(outcome(input, kNormalize), expected) << input;
  }
  EXPECT_EQ(canonicalizePath("/a b\x01\x7f\x80\xff"), "/a%20b%01%7F%80%FF");
  EXPECT_EQ(canonicalizePath(std::string_view("/a\0b", 4)), std::nullopt);
}

TEST(PathNormalizationTest, APercentThatBeginsNoEscapeStays) {
  EXPECT_EQ(outcome("/a%zzb", kNormalize), "/a%zzb");
  EXPECT_EQ(outcome("/a%", kNormalize), "/a%");
  EXPECT_EQ(outcome("/a%2", kNormalize), "/a%2");
  EXPECT_EQ(outcome("/a%2g", kNormalize), "/a%2g");
  EXPECT_EQ(outcome("/%%", kNormalize), "/%%");
  EXPECT_EQ(outcome("/a%%7e", kNormalize), "/a%~");
  EXPECT_EQ(outcome("/a%%2e", kNormalize), "/a%.");
  // ...unless decoding what follows would turn it into an escape: then it is written "%25", so
  // that decoding the result once more cannot produce a different path.
  EXPECT_EQ(outcome("/a%%32%65", kNormalize), "/a%252e");
  EXPECT_EQ(outcome("/a%%32e", kNormalize), "/a%252e");
  EXPECT_EQ(outcome("/a%2%65", kNormalize), "/a%252e");
  EXPECT_EQ(outcome("/a%%%32%65", kNormalize), "/a%%252e");
  EXPECT_EQ(outcome("/a%%36%31", kNormalize), "/a%2561");
  EXPECT_EQ(outcome("/%%32%66", kNormalize), "/%252f");
  EXPECT_EQ(outcome("/a%%32%25", kNormalize), "/a%2%25");
  // A '%' in a segment that ".." removed is forgotten.
  EXPECT_EQ(outcome("/a%/../xy%32%65", kNormalize), "/xy2e");
}

TEST(PathNormalizationTest, NulCannotBeNormalised) {
  EXPECT_EQ(outcome("/%00", kNormalize), "400");
  EXPECT_EQ(outcome("/a/%00/../b", kBoth), "400");
  // Without normalize_path nobody looks.
  EXPECT_EQ(outcome("/%00", kMerge), "/%00");
}

// ---- merge_slashes ----------------------------------------------------------------------------

TEST(PathNormalizationTest, MergeSlashes) {
  EXPECT_EQ(outcome("//a//b//?q=1", kMerge), "/a/b/?q=1");
  EXPECT_EQ(outcome("/a//", kMerge), "/a/");
  EXPECT_EQ(outcome("///", kMerge), "//");
  EXPECT_EQ(outcome("//", kMerge), "//");
  EXPECT_EQ(outcome("/", kMerge), "/");
  // After normalisation: "/a/..//b" is "//b" first.
  EXPECT_EQ(outcome("//..//admin", kBoth), "/admin");
  EXPECT_EQ(mergeSlashes("a//b"), "a/b");
}

// ---- path_with_escaped_slashes_action -----------------------------------------------------------

TEST(PathNormalizationTest, EscapedSlashesActions) {
  using A = EscapedSlashesAction;
  // KEEP_UNCHANGED (and IMPLEMENTATION_SPECIFIC_DEFAULT) leaves them as data.
  EXPECT_EQ(outcome("/a%2fb", options(false, false, A::KeepUnchanged)), "/a%2fb");
  // REJECT_REQUEST: 400 when there is one, in either case, slash or backslash.
  for (std::string_view path : {"/a%2fb", "/a%2Fb", "/a%5cb", "/a%5Cb"}) {
    EXPECT_EQ(outcome(path, options(false, false, A::RejectRequest)), "400") << path;
  }
  EXPECT_EQ(outcome("/a/b", options(false, false, A::RejectRequest)), "/a/b");
  // UNESCAPE_AND_REDIRECT: 307 to the path unescaped and then normalised as configured.
  EXPECT_EQ(outcome("/a%2fb", options(false, false, A::UnescapeAndRedirect)), "307 /a/b");
  EXPECT_EQ(outcome("/a%5cb", options(false, false, A::UnescapeAndRedirect)), "307 /a\\b");
  EXPECT_EQ(outcome("/a%5cb", options(true, false, A::UnescapeAndRedirect)), "307 /a/b");
  EXPECT_EQ(outcome("/public%2f..%2fadmin/secret", options(true, true, A::UnescapeAndRedirect)),
            "307 /admin/secret");
  EXPECT_EQ(outcome("/a%2F%2Fb", options(false, true, A::UnescapeAndRedirect)), "307 /a/b");
  EXPECT_EQ(outcome("/a/b", options(true, true, A::UnescapeAndRedirect)), "/a/b");
  // UNESCAPE_AND_FORWARD: routed and forwarded unescaped.
  EXPECT_EQ(outcome("/public/..%2fadmin/secret", options(false, false, A::UnescapeAndForward)),
            "/public/../admin/secret");
  EXPECT_EQ(outcome("/public/..%2fadmin/secret", options(true, false, A::UnescapeAndForward)),
            "/admin/secret");
  // Only the path: the query keeps its escapes.
  EXPECT_EQ(outcome("/abc%2F?x=%2F", options(false, false, A::UnescapeAndForward)), "/abc/?x=%2F");
  EXPECT_EQ(outcome("/abc%2F?x=%2F", options(false, false, A::UnescapeAndRedirect)),
            "307 /abc/?x=%2F");
  // Unescaping happens before the dot-segment parameters are read.
  EXPECT_EQ(outcome("/a/..;x%2fy/b", options(true, false, A::UnescapeAndForward)), "/y/b");
  std::string path = "/a%2F%2fb%5C%5cc%2";
  EXPECT_TRUE(unescapeSlashes(path));
  EXPECT_EQ(path, "/a//b\\\\c%2");
  EXPECT_FALSE(unescapeSlashes(path));
}

// ---- fragments and queries --------------------------------------------------------------------

TEST(PathNormalizationTest, AFragmentIsRejectedWhateverTheOptions) {
  EXPECT_EQ(outcome("/a#frag", kDefaults), "400");
  EXPECT_EQ(outcome("/a?#b", kDefaults), "400");
  EXPECT_EQ(outcome("/a/./b#x", kBoth), "400");
}

TEST(PathNormalizationTest, TheQueryIsKeptByteForByte) {
  EXPECT_EQ(outcome("/a?x=/../b&y=%61", kBoth), "/a?x=/../b&y=%61");
  EXPECT_EQ(outcome("/a/../b?q=//x%2f", kBoth), "/b?q=//x%2f");
  EXPECT_EQ(outcome("/?a=../b", kBoth), "/?a=../b");
  EXPECT_EQ(outcome("/a%3F/b?c", kBoth), "/a%3F/b?c");
  EXPECT_EQ(outcome("/a?", kBoth), "/a?");
}

// ---- The recorded Envoy table -----------------------------------------------------------------

// A table column ("default", "n1m0_UNESCAPE_AND_FORWARD", ...) as options.
PathNormalizationOptions columnOptions(const std::string& column) {
  if (column == "default") {
    return kDefaults;
  }
  const std::string action = column.substr(5);
  EscapedSlashesAction a = EscapedSlashesAction::KeepUnchanged;
  if (action == "REJECT_REQUEST") {
    a = EscapedSlashesAction::RejectRequest;
  } else if (action == "UNESCAPE_AND_REDIRECT") {
    a = EscapedSlashesAction::UnescapeAndRedirect;
  } else if (action == "UNESCAPE_AND_FORWARD") {
    a = EscapedSlashesAction::UnescapeAndForward;
  } else {
    // KEEP_UNCHANGED, and IMPLEMENTATION_SPECIFIC_DEFAULT, which is KEEP_UNCHANGED in Envoy
    // (its default runtime value); the HCM config maps it so.
    EXPECT_TRUE(action == "KEEP_UNCHANGED" || action == "IMPLEMENTATION_SPECIFIC_DEFAULT")
        << column;
  }
  return options(column[1] == '1', column[3] == '1', a);
}

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream stream(line);
  std::string cell;
  while (std::getline(stream, cell, '\t')) {
    cells.push_back(cell);
  }
  return cells;
}

TEST(PathNormalizationTest, EveryCaseOfTheRecordedEnvoyTable) {
  std::ifstream table(PATH_NORMALIZATION_ENVOY_TABLE);
  ASSERT_TRUE(table.good()) << PATH_NORMALIZATION_ENVOY_TABLE;
  std::string line;
  std::vector<std::string> header;
  size_t cases = 0;
  while (std::getline(table, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::vector<std::string> cells = splitTabs(line);
    if (header.empty()) {
      header = std::move(cells);
      ASSERT_EQ(header.size(), 22u) << "input + 21 option combinations";
      continue;
    }
    ASSERT_EQ(cells.size(), header.size()) << line;
    for (size_t i = 1; i < cells.size(); i++) {
      EXPECT_EQ(outcome(cells[0], columnOptions(header[i])), cells[i])
          << header[i] << ": " << cells[0];
      cases++;
    }
  }
  EXPECT_EQ(cases, 674u * 21u);
}

}  // namespace
}  // namespace Proxy::Http
