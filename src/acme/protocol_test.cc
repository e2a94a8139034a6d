#include "acme/protocol.h"

#include <gtest/gtest.h>

#include "acme/http01.h"
#include "acme/record.h"

namespace porcupine::acme {
namespace {

TEST(ParseDirectory, NeedsTheThreeUrls) {
  nlohmann::json j = {{"newNonce", "https://ca/nonce"},
                      {"newAccount", "https://ca/acct"},
                      {"newOrder", "https://ca/order"},
                      {"meta", {{"termsOfService", "x"}}}};
  Result<Directory> d = ParseDirectory(j);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->new_order, "https://ca/order");
  j.erase("newOrder");
  EXPECT_EQ(ParseDirectory(j).status().message(), "directory: no newOrder");
  EXPECT_FALSE(ParseDirectory(nlohmann::json("x")).ok());
}

TEST(OrderStateMachine, EveryStatusHasAStep) {
  EXPECT_EQ(NextOrderStep("pending"), OrderStep::kAuthorize);
  EXPECT_EQ(NextOrderStep("ready"), OrderStep::kFinalize);
  EXPECT_EQ(NextOrderStep("processing"), OrderStep::kWait);
  EXPECT_EQ(NextOrderStep("valid"), OrderStep::kDownload);
  EXPECT_EQ(NextOrderStep("invalid"), OrderStep::kFail);
  EXPECT_EQ(NextOrderStep("bogus"), OrderStep::kFail);
}

TEST(ParseOrder, ReadsStatusUrlsAndError) {
  nlohmann::json j = {
      {"status", "invalid"},
      {"authorizations", {"https://ca/authz/1", "https://ca/authz/2"}},
      {"finalize", "https://ca/finalize/1"},
      {"error", {{"type", "urn:ietf:params:acme:error:unauthorized"}, {"detail", "no"}}}};
  Result<Order> o = ParseOrder(j);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->authorizations.size(), 2u);
  EXPECT_EQ(o->error, "unauthorized: no");
  j.erase("finalize");
  EXPECT_FALSE(ParseOrder(j).ok());
}

TEST(ParseAuthorization, PicksTheHttp01Challenge) {
  nlohmann::json j = {{"status", "pending"},
                      {"identifier", {{"type", "dns"}, {"value", "mail.example.com"}}},
                      {"challenges",
                       {{{"type", "dns-01"}, {"url", "https://ca/chal/d"}, {"token", "dtok"}},
                        {{"type", "http-01"},
                         {"url", "https://ca/chal/h"},
                         {"token", "h-tok_1"},
                         {"status", "pending"}}}}};
  Result<Authorization> a = ParseAuthorization(j, "http-01");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->identifier, "mail.example.com");
  EXPECT_EQ(a->challenge_url, "https://ca/chal/h");
  EXPECT_EQ(a->token, "h-tok_1");
  // A pending authorization without a usable challenge of the type.
  EXPECT_FALSE(ParseAuthorization(j, "tls-alpn-01").ok());
  j["challenges"][1]["token"] = "../../etc/passwd";
  EXPECT_FALSE(ParseAuthorization(j, "http-01").ok());
  // Valid already: no challenge needed.
  j["status"] = "valid";
  EXPECT_TRUE(ParseAuthorization(j, "tls-alpn-01").ok());
}

TEST(KeyAuthorization, TokenDotThumbprint) {
  EXPECT_EQ(KeyAuthorization("tok", "thumb"), "tok.thumb");
}

TEST(Problems, DescribedOnOneLine) {
  EXPECT_EQ(DescribeProblem(R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"old"})"),
            "badNonce: old");
  EXPECT_EQ(ProblemType(R"({"type":"urn:ietf:params:acme:error:badNonce"})"), "badNonce");
  EXPECT_EQ(DescribeProblem("<html>\nbad gateway</html>"), "<html> bad gateway</html>");
  EXPECT_EQ(DescribeProblem(""), "(empty body)");
  EXPECT_EQ(ProblemType("not json"), "");
}

TEST(SplitHttpUrl, OriginAndPath) {
  auto s = SplitHttpUrl("https://localhost:14000/dir?x=1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->origin, "https://localhost:14000");
  EXPECT_EQ(s->path, "/dir?x=1");
  EXPECT_EQ(SplitHttpUrl("https://ca")->path, "/");
  EXPECT_FALSE(SplitHttpUrl("ftp://ca/x"));
  EXPECT_FALSE(SplitHttpUrl("https:///x"));
  EXPECT_FALSE(SplitHttpUrl("ca/x"));
}

TEST(ChallengeToken, OnlyTheWellKnownPath) {
  EXPECT_EQ(ChallengeToken("/.well-known/acme-challenge/abc_-1"), "abc_-1");
  EXPECT_FALSE(ChallengeToken("/.well-known/acme-challenge/"));
  EXPECT_FALSE(ChallengeToken("/.well-known/acme-challenge/a/b"));
  EXPECT_FALSE(ChallengeToken("/.well-known/acme-challenge/a.b"));
  EXPECT_FALSE(ChallengeToken("/other/abc"));
}

TEST(Record, RoundTripsAndRefusesUnknownVersions) {
  Record r;
  r.account = {"https://ca/dir", "KEY", "https://ca/acct/1"};
  r.certificate = {{"a.example.com"}, "CERT", "CKEY", 123, 45};
  r.challenges["tok"] = "tok.thumb";
  Result<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->account.url, "https://ca/acct/1");
  EXPECT_EQ(back->certificate.domains, r.certificate.domains);
  EXPECT_EQ(back->certificate.not_after, 123);
  EXPECT_EQ(back->challenges, r.challenges);
  EXPECT_TRUE(back->has_certificate());
  Result<Record> empty = DecodeRecord("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_certificate());
  EXPECT_FALSE(DecodeRecord(R"({"version":2})").ok());
  EXPECT_FALSE(DecodeRecord("{").ok());
  EXPECT_FALSE(DecodeRecord(R"({"version":1})").ok());  // no account/certificate
}

}  // namespace
}  // namespace porcupine::acme
