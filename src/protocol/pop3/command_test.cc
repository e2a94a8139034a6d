#include "protocol/pop3/command.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <string>
#include <vector>

namespace porcupine::pop3 {
namespace {

using namespace std::string_literals;

TEST(SplitCommandTest, Table) {
  struct Case {
    std::string line, verb, rest;
  };
  const Case cases[] = {
      {"", "", ""},
      {"STAT", "STAT", ""},
      {"LIST 1", "LIST", "1"},
      {"TOP 1 2", "TOP", "1 2"},
      {"PASS  two  spaces ", "PASS", " two  spaces "},
      {" NOOP", "", "NOOP"},
      {"STAT ", "STAT", ""},
  };
  for (const Case& c : cases) {
    CommandLine cmd = SplitCommand(c.line);
    EXPECT_EQ(cmd.verb, c.verb) << c.line;
    EXPECT_EQ(cmd.rest, c.rest) << c.line;
  }
}

TEST(SplitArgsTest, Table) {
  struct Case {
    std::string rest;
    std::vector<std::string_view> words;
  };
  const Case cases[] = {
      {"", {}},           {"   ", {}}, {"1", {"1"}}, {"1 2", {"1", "2"}}, {"  1   2  ", {"1", "2"}},
      {"a\tb", {"a\tb"}},
  };
  for (const Case& c : cases) EXPECT_EQ(SplitArgs(c.rest), c.words) << "'" << c.rest << "'";
}

TEST(EqualsIgnoreCaseTest, Table) {
  EXPECT_TRUE(EqualsIgnoreCase("capa", "CAPA"));
  EXPECT_TRUE(EqualsIgnoreCase("CaPa", "cApA"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("CAP", "CAPA"));
  EXPECT_FALSE(EqualsIgnoreCase("CAPB", "CAPA"));
  // Only ASCII letters fold: '@' (0x40) is not '`' (0x60).
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
}

TEST(ParseNumberTest, Table) {
  struct Case {
    std::string text;
    std::optional<uint64_t> value;
  };
  const Case cases[] = {
      {"0", 0},
      {"1", 1},
      {"42", 42},
      {"007", 7},
      {"18446744073709551615", UINT64_MAX},
      {"18446744073709551616", std::nullopt},  // overflow
      {"99999999999999999999999", std::nullopt},
      {"", std::nullopt},
      {"+1", std::nullopt},
      {"-1", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"1a", std::nullopt},
      {"0x10", std::nullopt},
      {"1.0", std::nullopt},
      {"\xd9\xa1", std::nullopt},  // ARABIC-INDIC DIGIT ONE
      {std::string(40, '0') + "", 0},
      {std::string(41, '0'), std::nullopt},  // longer than RFC 1939 allows
  };
  for (const Case& c : cases) EXPECT_EQ(ParseNumber(c.text), c.value) << "'" << c.text << "'";
}

TEST(IsValidUserNameTest, Table) {
  EXPECT_TRUE(IsValidUserName("alice"));
  EXPECT_TRUE(IsValidUserName("alice@example.test"));
  EXPECT_TRUE(IsValidUserName("j\xc3\xb6rg"));  // UTF-8 is fine
  EXPECT_TRUE(IsValidUserName(std::string(kMaxUserName, 'x')));
  EXPECT_FALSE(IsValidUserName(std::string(kMaxUserName + 1, 'x')));
  EXPECT_FALSE(IsValidUserName(""));
  EXPECT_FALSE(IsValidUserName("a b"));
  EXPECT_FALSE(IsValidUserName("a\tb"));
  EXPECT_FALSE(IsValidUserName("a\x7f"));
  EXPECT_FALSE(IsValidUserName("a\0b"s));
}

TEST(IsValidUniqueIdTest, Table) {
  EXPECT_TRUE(IsValidUniqueId("a"));
  EXPECT_TRUE(IsValidUniqueId("!~"));
  EXPECT_TRUE(IsValidUniqueId(std::string(70, 'u')));
  EXPECT_FALSE(IsValidUniqueId(std::string(71, 'u')));
  EXPECT_FALSE(IsValidUniqueId(""));
  EXPECT_FALSE(IsValidUniqueId("a b"));
  EXPECT_FALSE(IsValidUniqueId("a\x80"));
}

std::string Base64(std::string_view raw) {
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                    raw.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the NUL terminator
  return out;
}

TEST(ParseSaslPlainTest, DecodedMessages) {
  struct Case {
    std::string raw;  // before base64
    std::optional<SaslError> error;
    std::string user = "", password = "";
  };
  const Case cases[] = {
      {"\0alice\0secret"s, std::nullopt, "alice", "secret"},
      {"alice\0alice\0secret"s, std::nullopt, "alice", "secret"},
      {"\0alice\0pass word\xc3\xa9"s, std::nullopt, "alice", "pass word\xc3\xa9"},
      {"bob\0alice\0secret"s, SaslError::kAuthzid},
      {"\0alice\0"s, SaslError::kMalformed},
      {"\0\0secret"s, SaslError::kMalformed},
      {"\0alice"s, SaslError::kMalformed},
      {"alice"s, SaslError::kMalformed},
      {"\0alice\0secret\0"s, SaslError::kMalformed},
      {"\0al ice\0secret"s, SaslError::kMalformed},
      {"\0al\nice\0secret"s, SaslError::kMalformed},
      {"\0\0"s, SaslError::kMalformed},
  };
  for (const Case& c : cases) {
    SaslPlainParse parsed = ParseSaslPlain(Base64(c.raw));
    if (c.error) {
      ASSERT_TRUE(std::holds_alternative<SaslError>(parsed)) << Base64(c.raw);
      EXPECT_EQ(std::get<SaslError>(parsed), *c.error) << Base64(c.raw);
    } else {
      ASSERT_TRUE(std::holds_alternative<PlainCredentials>(parsed)) << Base64(c.raw);
      EXPECT_EQ(std::get<PlainCredentials>(parsed).authcid, c.user);
      EXPECT_EQ(std::get<PlainCredentials>(parsed).password, c.password);
    }
  }
}

TEST(ParseSaslPlainTest, StrictBase64) {
  struct Case {
    std::string base64;
    SaslError error;
  };
  const Case cases[] = {
      {"", SaslError::kMalformed},                    // empty response: empty message
      {"AGFsaWNlAHNlY3JldA", SaslError::kBadBase64},  // padding missing
      {"AGFsaWNlAHNlY3JldA=", SaslError::kBadBase64},
      {"AGFsaWNlAHNlY3JldA===", SaslError::kBadBase64},
      {"AGFsaWNl AHNlY3JldA==", SaslError::kBadBase64},  // space inside
      {"AGFsaWNlAHNlY3JldA==x", SaslError::kBadBase64},  // trailing garbage
      {"AGFsaWNlAHNlY3JldA==\r", SaslError::kBadBase64},
      {"AGFsaWNl_HNlY3JldA==", SaslError::kBadBase64},  // URL-safe alphabet
      {"!!!!", SaslError::kBadBase64},
      {"AB==", SaslError::kBadBase64},  // non-zero pad bits
      {"=", SaslError::kBadBase64},     // the caller maps RFC 5034 "=" to ""
  };
  for (const Case& c : cases) {
    SaslPlainParse parsed = ParseSaslPlain(c.base64);
    ASSERT_TRUE(std::holds_alternative<SaslError>(parsed)) << c.base64;
    EXPECT_EQ(std::get<SaslError>(parsed), c.error) << c.base64;
  }
}

}  // namespace
}  // namespace porcupine::pop3
