#include "protocol/common/sasl.h"

#include <gtest/gtest.h>

#include <string>

namespace porcupine::protocol {
namespace {

using namespace std::string_literals;

TEST(SaslTest, Base64RoundTrip) {
  for (std::string s : {""s, "a"s, "ab"s, "abc"s, "\0user\0pass"s, std::string(300, '\xff')}) {
    std::string back;
    ASSERT_TRUE(DecodeBase64(EncodeBase64(s), &back)) << s;
    EXPECT_EQ(back, s);
  }
  EXPECT_EQ(EncodeBase64("Username:"), "VXNlcm5hbWU6");
}

TEST(SaslTest, Base64IsStrict) {
  std::string out = "left over";
  for (std::string_view bad : {"YQ", "YQ=", "Y Q==", "YQ==\r", "!!!!", "YQ==YQ=="}) {
    EXPECT_FALSE(DecodeBase64(bad, &out)) << bad;
    EXPECT_TRUE(out.empty());
  }
}

TEST(SaslTest, Plain) {
  struct Case {
    std::string decoded;
    SaslPlainError want;
  };
  const Case cases[] = {
      {"\0alice\0secret"s, SaslPlainError::kNone},
      {"alice\0alice\0secret"s, SaslPlainError::kNone},
      {"bob\0alice\0secret"s, SaslPlainError::kAuthzid},
      {"\0alice\0"s, SaslPlainError::kMalformed},
      {"\0\0secret"s, SaslPlainError::kMalformed},
      {"alice secret"s, SaslPlainError::kMalformed},
      {"\0alice\0sec\0ret"s, SaslPlainError::kMalformed},
      {""s, SaslPlainError::kMalformed},
  };
  for (const Case& c : cases) {
    SaslPlain creds;
    EXPECT_EQ(DecodeSaslPlain(EncodeBase64(c.decoded), &creds), c.want) << EncodeBase64(c.decoded);
    if (c.want == SaslPlainError::kNone) {
      EXPECT_EQ(creds.user, "alice");
      EXPECT_EQ(creds.password, "secret");
    } else {
      EXPECT_TRUE(creds.user.empty() && creds.password.empty());
    }
  }
  SaslPlain creds;
  EXPECT_EQ(DecodeSaslPlain("AGFsaWNl!", &creds), SaslPlainError::kBase64);
}

}  // namespace
}  // namespace porcupine::protocol
