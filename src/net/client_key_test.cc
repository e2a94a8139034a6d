#include "net/client_key.h"

#include <gtest/gtest.h>

namespace porcupine::net {
namespace {

std::string Key(const char* address) { return ClientKey(asio::ip::make_address(address)); }

TEST(ClientKey, Ipv4AsIs) {
  EXPECT_EQ(Key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(Key("127.0.0.2"), "127.0.0.2");
  EXPECT_NE(Key("127.0.0.1"), Key("127.0.0.2"));
}

TEST(ClientKey, Ipv6ByItsSlash64) {
  EXPECT_EQ(Key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(Key("2001:db8:1:2::1"), Key("2001:db8:1:2:ffff::9"));
  EXPECT_NE(Key("2001:db8:1:2::1"), Key("2001:db8:1:3::1"));
  EXPECT_EQ(Key("::1"), "::/64");
}

TEST(ClientKey, MappedIpv4IsTheIpv4Address) { EXPECT_EQ(Key("::ffff:192.0.2.7"), "192.0.2.7"); }

}  // namespace
}  // namespace porcupine::net
