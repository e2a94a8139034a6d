#include "node/scram.h"

#include <gtest/gtest.h>

#include <string>

namespace porcupine::node {
namespace {

TEST(ScramTest, SecretsHaveTheRfc5803Form) {
  Result<std::string> a = ScramSecretsFromPassword("pw-secret", 4096);
  Result<std::string> b = ScramSecretsFromPassword("pw-secret", 4096);
  ASSERT_TRUE(a.ok() && b.ok());
  // SCRAM-SHA-256$4096:<24 base64 chars: 16 bytes>$<44: 32 bytes>:<44: 32 bytes>
  ASSERT_EQ(a->rfind("SCRAM-SHA-256$4096:", 0), 0u) << *a;
  EXPECT_EQ(a->size(), std::string("SCRAM-SHA-256$4096:").size() + 24 + 1 + 44 + 1 + 44) << *a;
  EXPECT_NE(*a, *b) << "the salt must be fresh";
  EXPECT_EQ(a->find("pw-secret"), std::string::npos);
}

TEST(ScramTest, ClientUser) {
  EXPECT_EQ(ScramClientUser("n,,n=alice@example.test,r=abc"), "alice@example.test");
  EXPECT_EQ(ScramClientUser("y,,n=a=2Cb=3Dc,r=abc"), "a,b=c");
  EXPECT_EQ(ScramClientUser("n,a=bob,n=bob,r=abc"), "bob");
  EXPECT_EQ(ScramClientUser("n,a=eve,n=bob,r=abc"), std::nullopt);  // no proxy logins
  EXPECT_EQ(ScramClientUser("n,,n=,r=abc"), std::nullopt);
  EXPECT_EQ(ScramClientUser("n,,n=a=2Xb,r=abc"), std::nullopt);
  EXPECT_EQ(ScramClientUser("n,,r=abc"), std::nullopt);
  EXPECT_EQ(ScramClientUser("garbage"), std::nullopt);
}

}  // namespace
}  // namespace porcupine::node
