#include "proxy/http/header_map.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/unit/common/counting_new.h"

namespace Proxy::Http {
namespace {

std::vector<std::pair<std::string, std::string>> entries(const HeaderMap& map) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const HeaderEntry& h : map) {
    out.emplace_back(h.key, h.value);
  }
  return out;
}

using Entries = std::vector<std::pair<std::string, std::string>>;

TEST(HeaderMapTest, RemovalsKeepTheOrderOfTheRestAndTheByteSize) {
  RequestHeaderMap map;
  map.addCopy("a", "1");
  map.addCopy("x-dup", "first");
  map.addCopy("b", "2");
  map.addCopy("x-dup", "second");
  map.addCopy("c", "3");
  EXPECT_EQ(map.byteSize(), 3u * 2 + 2 * 5 + 5 + 6);

  // setCopy replaces the first and drops the other duplicate, in place.
  map.setCopy("x-dup", "only");
  EXPECT_EQ(entries(map), (Entries{{"a", "1"}, {"x-dup", "only"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_EQ(map.byteSize(), 3u * 2 + 5 + 4);

  // remove() drops every entry of a name; the rest keep their order.
  EXPECT_EQ(map.remove("b"), 1u);
  EXPECT_EQ(map.remove("missing"), 0u);
  EXPECT_EQ(entries(map), (Entries{{"a", "1"}, {"x-dup", "only"}, {"c", "3"}}));
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.byteSize(), 2u * 2 + 5 + 4);

  // Entries added after removals come last, and lookups see only live entries.
  map.addCopy("d", "4");
  EXPECT_EQ(entries(map), (Entries{{"a", "1"}, {"x-dup", "only"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_FALSE(map.has("b"));
  EXPECT_EQ(map.getValue("d"), "4");

  // clear() empties the map; it can be filled again.
  map.clear();
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.byteSize(), 0u);
  EXPECT_EQ(map.begin(), map.end());
  EXPECT_FALSE(map.has("a"));
  map.addCopy("e", "5");
  EXPECT_EQ(entries(map), (Entries{{"e", "5"}}));
}

// assignString() is `to = from` whatever the lengths, also when `from` is part of `to`; a
// value no longer than the old one keeps the string's storage.
TEST(HeaderMapTest, AssignStringIsAssignmentForEveryLength) {
  std::string to = "a value of some length, past the small-string buffer";
  const char* storage = to.data();
  assignString(to, "shorter value");
  EXPECT_EQ("shorter value", to);
  EXPECT_EQ(storage, to.data());
  assignString(to, "same length!!");
  EXPECT_EQ("same length!!", to);
  assignString(to, "");
  EXPECT_EQ("", to);
  EXPECT_EQ(storage, to.data());
  assignString(to, "a much longer value than any before it, longer than the capacity too......");
  EXPECT_EQ("a much longer value than any before it, longer than the capacity too......", to);
  // Overlapping: a suffix, and a prefix, of the string itself.
  assignString(to, std::string_view(to).substr(7));
  EXPECT_EQ("longer value than any before it, longer than the capacity too......", to);
  assignString(to, std::string_view(to).substr(0, 6));
  EXPECT_EQ("longer", to);

  // Through the map: a reused entry takes the new name and value exactly.
  HeaderMap map;
  map.addCopy("x-long-header-name", "a long value that needs the heap to live in");
  map.clear();
  map.addCopy("x-b", "v");
  ASSERT_EQ(1u, map.size());
  EXPECT_EQ("x-b", map.get("x-b")->key);
  EXPECT_EQ("v", map.get("x-b")->value);
  map.setCopy("x-b", "a longer value than v");
  EXPECT_EQ("a longer value than v", map.get("x-b")->value);
  EXPECT_EQ(3u + 21u, map.byteSize());
}

TEST(HeaderMapTest, CopiesAndMovesCarryOnlyTheLiveEntries) {
  ResponseHeaderMap original;
  original.addCopy(":status", "200");
  original.addCopy("x-removed", "a value longer than the small string buffer");
  original.addCopy("server", "envoy");
  original.remove("x-removed");

  ResponseHeaderMap copy(original);
  EXPECT_EQ(entries(copy), (Entries{{":status", "200"}, {"server", "envoy"}}));
  EXPECT_EQ(copy.byteSize(), original.byteSize());
  EXPECT_EQ(copy.status(), 200u);

  ResponseHeaderMap assigned;
  assigned.addCopy("old", "entry");
  assigned = original;
  EXPECT_EQ(entries(assigned), entries(original));

  ResponseHeaderMap moved(std::move(copy));
  EXPECT_EQ(entries(moved), (Entries{{":status", "200"}, {"server", "envoy"}}));
  EXPECT_EQ(moved.byteSize(), original.byteSize());
}

TEST(HeaderMapTest, ARequestsMapsAllocateNothingOnceTheThreadHasMadeSome) {
#ifdef PROXY_FREE_LIST_DISABLED
  GTEST_SKIP() << "free lists are off under AddressSanitizer";
#else
  // What one proxied request does with its maps: the codec makes one, fills it with headers
  // longer than std::string's inline buffer, the connection manager adds and replaces a few,
  // the stream ends and the map is destroyed.
  const std::string long_value(100, 'v');
  std::vector<std::string> names;
  for (int i = 0; i < 12; i++) {
    names.push_back("x-a-header-name-longer-than-sso-" + std::to_string(i % 10));
  }
  const auto one_request = [&]() {
    auto headers = std::make_unique<RequestHeaderMap>();
    headers->reserve(16);
    for (const std::string& name : names) {
      headers->addCopy(name, long_value);
    }
    headers->setCopy("x-request-id", "00000000-0000-4000-8000-000000000000");
    headers->remove("x-a-header-name-longer-than-sso-0");
    headers->setCopy("x-envoy-expected-rq-timeout-ms", "15000");
    auto trailers = std::make_unique<ResponseTrailerMap>();
    trailers->addCopy("grpc-message", long_value);
  };
  // The first requests on the thread fill its free lists.
  for (int i = 0; i < 3; i++) {
    one_request();
  }
  const uint64_t before = ::Proxy::Test::operatorNewCalls();
  for (int i = 0; i < 100; i++) {
    one_request();
  }
  EXPECT_EQ(::Proxy::Test::operatorNewCalls() - before, 0u);
#endif
}

TEST(HeaderMapTest, HundredStreamsInFlightAllocateNothingOnceTheThreadHasMadeSome) {
#ifdef PROXY_FREE_LIST_DISABLED
  GTEST_SKIP() << "free lists are off under AddressSanitizer";
#else
  // `h2load -c1 -m100` through the proxy: 100 streams in flight on one worker, each with a
  // request map (a few headers) and a response map (many more: demo-upstream echoes the
  // request), all ending about together. The 200 maps' storage must all be kept for the next
  // 100 streams: in one pool of 128 vectors, 72 were freed and made again each round (~9
  // strings allocated per request, issue 11).
  const std::string long_value(40, 'v');
  std::vector<std::string> request_names;
  std::vector<std::string> response_names;
  for (int i = 0; i < 16; i++) {
    request_names.push_back("x-request-header-longer-than-sso-" + std::to_string(i));
    response_names.push_back("x-response-header-longer-than-sso-" + std::to_string(i));
  }
  std::vector<std::unique_ptr<RequestHeaderMap>> requests;
  std::vector<std::unique_ptr<ResponseHeaderMap>> responses;
  requests.reserve(100);
  responses.reserve(100);
  const auto hundred_streams = [&]() {
    for (int stream = 0; stream < 100; stream++) {
      requests.push_back(std::make_unique<RequestHeaderMap>());
      for (int i = 0; i < 4; i++) {
        requests.back()->addCopy(request_names[i], long_value);
      }
    }
    for (int stream = 0; stream < 100; stream++) {
      responses.push_back(std::make_unique<ResponseHeaderMap>());
      for (int i = 0; i < 16; i++) {
        responses.back()->addCopy(response_names[i], long_value);
      }
    }
    requests.clear();
    responses.clear();
  };
  // The first round on the thread fills its spare storage.
  hundred_streams();
  const uint64_t before = ::Proxy::Test::operatorNewCalls();
  for (int round = 0; round < 3; round++) {
    hundred_streams();
  }
  EXPECT_EQ(::Proxy::Test::operatorNewCalls() - before, 0u);
#endif
}

}  // namespace
}  // namespace Proxy::Http
