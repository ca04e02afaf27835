#include "proxy/network/address.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace Proxy::Network {
namespace {

TEST(AddressTest, Ipv4LiteralAndPort) {
  absl::StatusOr<Address> address = Address::fromIpPort("127.0.0.1", /*port=*/8080);
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_TRUE(address->valid());
  EXPECT_EQ(address->family(), AF_INET);
  EXPECT_EQ(address->ip(), "127.0.0.1");
  EXPECT_EQ(address->port(), 8080u);
  EXPECT_EQ(address->asString(), "127.0.0.1:8080");
  EXPECT_EQ(address->sockAddrLen(), sizeof(sockaddr_in));
  EXPECT_FALSE(address->isAnyAddress());
}

TEST(AddressTest, Ipv6LiteralIsBracketedInAsString) {
  absl::StatusOr<Address> address = Address::fromIpPort("::1", /*port=*/80);
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->family(), AF_INET6);
  EXPECT_EQ(address->ip(), "::1");
  EXPECT_EQ(address->asString(), "[::1]:80");
  EXPECT_EQ(address->sockAddrLen(), sizeof(sockaddr_in6));

  // Non-canonical spellings come back canonical.
  absl::StatusOr<Address> long_form = Address::fromIpPort("0:0:0:0:0:0:0:1", /*port=*/80);
  ASSERT_TRUE(long_form.ok());
  EXPECT_EQ(*long_form, *address);
}

TEST(AddressTest, WildcardAddresses) {
  EXPECT_TRUE(Address::fromIpPort("0.0.0.0", /*port=*/0)->isAnyAddress());
  EXPECT_TRUE(Address::fromIpPort("::", /*port=*/0)->isAnyAddress());
  EXPECT_FALSE(Address::fromIpPort("::1", /*port=*/0)->isAnyAddress());
  EXPECT_EQ(Address::fromIpPort("::", /*port=*/443)->asString(), "[::]:443");
}

TEST(AddressTest, InvalidIpIsRejectedWithTheInputInTheMessage) {
  // A host name is not an IP literal: resolving names is not this class's job.
  absl::StatusOr<Address> address = Address::fromIpPort("localhost", /*port=*/80);
  ASSERT_FALSE(address.ok());
  EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(address.status().message(), "invalid IP address 'localhost'");

  // Brackets belong to the printed form only.
  EXPECT_EQ(Address::fromIpPort("[::1]", /*port=*/80).status().message(),
            "invalid IP address '[::1]'");
  EXPECT_EQ(Address::fromIpPort("256.0.0.1", /*port=*/80).status().message(),
            "invalid IP address '256.0.0.1'");
  EXPECT_EQ(Address::fromIpPort("", /*port=*/80).status().message(), "invalid IP address ''");
}

TEST(AddressTest, PortAbove65535IsRejected) {
  EXPECT_TRUE(Address::fromIpPort("127.0.0.1", /*port=*/65535).ok());
  absl::StatusOr<Address> address = Address::fromIpPort("127.0.0.1", /*port=*/65536);
  ASSERT_FALSE(address.ok());
  EXPECT_EQ(address.status().message(),
            "invalid port 65536 for IP address '127.0.0.1': must be 0-65535");
}

TEST(AddressTest, EqualityComparesFamilyIpAndPort) {
  const Address a = *Address::fromIpPort("10.0.0.1", /*port=*/80);
  EXPECT_EQ(a, *Address::fromIpPort("10.0.0.1", /*port=*/80));
  EXPECT_NE(a, *Address::fromIpPort("10.0.0.1", /*port=*/81));
  EXPECT_NE(a, *Address::fromIpPort("10.0.0.2", /*port=*/80));
  EXPECT_NE(a, *Address::fromIpPort("::ffff:10.0.0.1", /*port=*/80));
  EXPECT_NE(a, Address());
  EXPECT_EQ(Address(), Address());
}

TEST(AddressTest, FromSockaddrRoundTrip) {
  const Address original = *Address::fromIpPort("192.168.1.7", /*port=*/1234);
  const Address copy = Address::fromSockaddr(original.sockAddr(), original.sockAddrLen());
  EXPECT_EQ(copy, original);
  EXPECT_EQ(copy.asString(), "192.168.1.7:1234");

  // A non-IP family stays invalid instead of being half-parsed.
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(Address::fromSockaddr(&unix_like, sizeof(unix_like)).valid());
  EXPECT_EQ(Address().asString(), "");
}

TEST(AddressTest, FromLocalOfANonSocketIsInvalid) {
  EXPECT_FALSE(Address::fromLocal(/*fd=*/-1).valid());
  EXPECT_FALSE(Address::fromPeer(/*fd=*/-1).valid());
}

}  // namespace
}  // namespace Proxy::Network
