#include "outbound/extensions.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::outbound {
namespace {

Extensions Parse(std::vector<std::string> keywords) {
  Reply r;
  r.code = 250;
  r.lines.push_back("mx.test greets you");
  for (std::string& k : keywords) r.lines.push_back(std::move(k));
  return ParseExtensions(r);
}

TEST(Extensions, NoneInAOneLineReply) {
  Extensions e = Parse({});
  EXPECT_FALSE(e.pipelining || e.size || e.eight_bit_mime || e.starttls || e.smtputf8 ||
               e.enhanced_status_codes);
  EXPECT_TRUE(e.auth.empty());
}

TEST(Extensions, AllKnownKeywordsAnyCase) {
  Extensions e = Parse({"pipelining", "SIZE 35882577", "8bitmime", "StartTLS", "SMTPUTF8",
                        "ENHANCEDSTATUSCODES", "AUTH PLAIN login SCRAM-SHA-256", "CHUNKING", "DSN",
                        "X-UNKNOWN whatever"});
  EXPECT_TRUE(e.pipelining);
  EXPECT_TRUE(e.size);
  EXPECT_EQ(e.max_size, 35882577u);
  EXPECT_TRUE(e.eight_bit_mime);
  EXPECT_TRUE(e.starttls);
  EXPECT_TRUE(e.smtputf8);
  EXPECT_TRUE(e.enhanced_status_codes);
  EXPECT_EQ(e.auth, (std::vector<std::string>{"PLAIN", "LOGIN", "SCRAM-SHA-256"}));
  EXPECT_TRUE(e.HasAuth("plain"));
  EXPECT_FALSE(e.HasAuth("CRAM-MD5"));
}

TEST(Extensions, SizeWithoutLimitOrWithGarbage) {
  EXPECT_TRUE(Parse({"SIZE"}).size);
  EXPECT_EQ(Parse({"SIZE"}).max_size, 0u);
  EXPECT_EQ(Parse({"SIZE 0"}).max_size, 0u);
  EXPECT_EQ(Parse({"SIZE 12x"}).max_size, 0u);
  EXPECT_EQ(Parse({"SIZE 99999999999999999999999"}).max_size, 0u);  // overflows
  EXPECT_EQ(Parse({"SIZE 18446744073709551615"}).max_size, 18446744073709551615u);
  EXPECT_FALSE(Parse({"SIZED 10"}).size);
}

TEST(Extensions, OldAuthEqualsFormAndDuplicates) {
  Extensions e = Parse({"AUTH=PLAIN LOGIN", "AUTH LOGIN PLAIN  CRAM-MD5"});
  EXPECT_EQ(e.auth, (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
}

TEST(Extensions, TheFirstLineIsNotAKeyword) {
  Reply r;
  r.code = 250;
  r.lines = {"PIPELINING"};  // the server's name, not an extension
  EXPECT_FALSE(ParseExtensions(r).pipelining);
}

}  // namespace
}  // namespace porcupine::outbound
