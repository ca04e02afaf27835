// proxy_common: the helpers every component shares, each in one place (JSON string literals,
// ASCII string helpers, header name/value validity, the std/absl string_view conversions).

#include <string>

#include "absl/strings/numbers.h"

#include "proxy/common/header_utility.h"
#include "proxy/common/json.h"
#include "proxy/common/string_util.h"
#include "proxy/common/string_view.h"

#include "gtest/gtest.h"

namespace Proxy {
namespace {

TEST(JsonTest, QuoteEscapesWhatRfc8259Requires) {
  // Plain text is only quoted.
  EXPECT_EQ(Json::quote("listener_0"), "\"listener_0\"");
  // Quotes and backslashes are escaped; the usual controls get their short forms.
  EXPECT_EQ(Json::quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Json::quote("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  // Other controls (NUL included) are \u00XX.
  EXPECT_EQ(Json::quote(std::string("\x01\x1f\0", 3)), "\"\\u0001\\u001f\\u0000\"");
  // Bytes >= 0x80 pass through as they are (UTF-8 is the reader's to check).
  EXPECT_EQ(Json::quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(JsonTest, AppendStringAppends) {
  std::string out = "{\"name\":";
  Json::appendString(out, "x");
  out.push_back('}');
  EXPECT_EQ(out, "{\"name\":\"x\"}");
}

TEST(StringUtilTest, CaseHelpersAreAsciiOnly) {
  EXPECT_EQ(StringUtil::toLower("Content-Type"), "content-type");
  EXPECT_EQ(StringUtil::toLower('Z'), 'z');
  // Bytes outside ASCII are left alone.
  EXPECT_EQ(StringUtil::toLower("\xc3\x89T\xc3\x89"), "\xc3\x89t\xc3\x89");

  EXPECT_TRUE(StringUtil::equalsIgnoreCase("HTTPS", "https"));
  EXPECT_FALSE(StringUtil::equalsIgnoreCase("https", "http"));
  // The needle is already lower-case; the haystack is not.
  EXPECT_TRUE(StringUtil::containsIgnoreCase("Application/GRPC+proto", "grpc"));
  EXPECT_FALSE(StringUtil::containsIgnoreCase("grp", "grpc"));
}

TEST(StringUtilTest, PrefixAndSuffix) {
  EXPECT_TRUE(StringUtil::startsWith("/service/1", "/service"));
  EXPECT_FALSE(StringUtil::startsWith("/s", "/service"));
  EXPECT_TRUE(StringUtil::endsWith("REQ(:path)", ")"));
  EXPECT_FALSE(StringUtil::endsWith("", ")"));
}

TEST(HeaderUtilityTest, NamesAreTokens) {
  EXPECT_TRUE(HeaderUtility::isValidHeaderName("x-request-id"));
  EXPECT_TRUE(HeaderUtility::isValidHeaderName("!#$%&'*+-.^_`|~09azAZ"));
  // Separators, spaces and empty names are not.
  EXPECT_FALSE(HeaderUtility::isValidHeaderName("x request"));
  EXPECT_FALSE(HeaderUtility::isValidHeaderName("x:y"));
  EXPECT_FALSE(HeaderUtility::isValidHeaderName(""));
  // Pseudo-headers only where asked for (config may name ":path"; the wire may not).
  EXPECT_FALSE(HeaderUtility::isValidHeaderName(":path"));
  EXPECT_TRUE(HeaderUtility::isValidHeaderName(":path", /*allow_pseudo=*/true));
  EXPECT_FALSE(HeaderUtility::isValidHeaderName(":", /*allow_pseudo=*/true));
}

TEST(HeaderUtilityTest, ValuesCarryNoLineBreaksOrNul) {
  EXPECT_TRUE(HeaderUtility::isValidHeaderValue("text/plain; charset=utf-8\t"));
  EXPECT_FALSE(HeaderUtility::isValidHeaderValue("a\r\nx-injected: 1"));
  EXPECT_FALSE(HeaderUtility::isValidHeaderValue("a\nb"));
  EXPECT_FALSE(HeaderUtility::isValidHeaderValue(std::string("a\0b", 3)));
  // The same byte anywhere in a long value: in a 16-byte block or in the tail after blocks.
  const std::string long_value(40, 'v');
  EXPECT_TRUE(HeaderUtility::isValidHeaderValue(long_value));
  for (size_t at : {0u, 15u, 16u, 31u, 32u, 39u}) {
    for (char bad : {'\0', '\r', '\n'}) {
      std::string value = long_value;
      value[at] = bad;
      EXPECT_FALSE(HeaderUtility::isValidHeaderValue(value)) << "byte " << int(bad) << " at " << at;
    }
  }
}

TEST(HeaderUtilityTest, PlainLowerCaseNamesAreRecognisedAndNothingElse) {
  // Lower-case letters, digits and '-', short (a padded tail) or long (whole blocks + tail).
  EXPECT_TRUE(HeaderUtility::isPlainLowerCaseName("x-request-id"));
  EXPECT_TRUE(HeaderUtility::isPlainLowerCaseName("x-envoy-upstream-service-time-0123456789"));
  // Anything else goes to the per-byte check: empty, upper case, other token characters,
  // separators, bytes from 0x80, wherever they sit.
  EXPECT_FALSE(HeaderUtility::isPlainLowerCaseName(""));
  const std::string long_name = "x-envoy-upstream-service-time-0123456789";
  for (size_t at : {0u, 15u, 16u, 31u, 32u, 39u}) {
    for (char other : {'A', 'Z', '_', '.', ' ', ':', '\0', '\x80', '\xff', '`', '{', '/'}) {
      std::string name = long_name;
      name[at] = other;
      EXPECT_FALSE(HeaderUtility::isPlainLowerCaseName(name)) << int(other) << " at " << at;
    }
  }
}

TEST(StringViewTest, ConvertsBothWaysWithoutCopying) {
  const std::string text = "12345";
  const std::string_view view = text;
  // Into absl for its calls, and back out.
  int value = 0;
  EXPECT_TRUE(absl::SimpleAtoi(asAbsl(view), &value));
  EXPECT_EQ(value, 12345);
  EXPECT_EQ(asStd(asAbsl(view)).data(), text.data());
}

}  // namespace
}  // namespace Proxy
