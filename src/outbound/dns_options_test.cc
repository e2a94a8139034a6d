#include "outbound/dns_options.h"

#include <gtest/gtest.h>

namespace porcupine::outbound {
namespace {

TEST(ParseDnsServer, Forms) {
  Result<DnsServer> s = ParseDnsServer("127.0.0.1:5353");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "127.0.0.1");
  EXPECT_EQ(s->port, 5353);
  s = ParseDnsServer("192.0.2.53");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->port, 53);
  s = ParseDnsServer("[::1]:5353");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "::1");
  EXPECT_EQ(s->port, 5353);
  s = ParseDnsServer("2001:db8::53");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->address, "2001:db8::53");
  EXPECT_EQ(s->port, 53);
  s = ParseDnsServer("[::1]");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->port, 53);
}

TEST(ParseDnsServer, Refuses) {
  for (const char* bad :
       {"", "localhost", "dns.example:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:x", "[::1", "[::1]x", "[::1]:", "1.2.3:53"}) {
    EXPECT_FALSE(ParseDnsServer(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace porcupine::outbound
