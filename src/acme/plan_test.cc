#include "acme/plan.h"

#include <gtest/gtest.h>

namespace porcupine::acme {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kNow = 1'800'000'000;

PlanInput Base() {
  PlanInput in;
  in.now = kNow;
  in.domains = {"mail.example.com"};
  in.cert_domains = {"mail.example.com"};
  in.not_after = kNow + 60 * kDay;
  in.renew_before = 30 * kDay;
  in.orderer = true;
  return in;
}

TEST(Plan, NothingToDoWithAFreshCertificate) {
  PlanDecision d = Plan(Base());
  EXPECT_FALSE(d.order);
  EXPECT_FALSE(d.install);
  EXPECT_EQ(d.reason, "");
}

TEST(Plan, OrdersWithoutACertificate) {
  PlanInput in = Base();
  in.not_after = 0;
  in.cert_domains.clear();
  PlanDecision d = Plan(in);
  EXPECT_TRUE(d.order);
  EXPECT_EQ(d.reason, "no certificate stored");
}

TEST(Plan, RenewsInsideTheWindowOnly) {
  PlanInput in = Base();
  in.not_after = kNow + 30 * kDay + 1;
  EXPECT_FALSE(Plan(in).order);
  in.not_after = kNow + 30 * kDay;
  PlanDecision d = Plan(in);
  EXPECT_TRUE(d.order);
  EXPECT_EQ(d.reason, "renewal due: expires in 30 days");
  in.not_after = kNow - 1;
  EXPECT_EQ(Plan(in).reason, "the stored certificate has expired");
  EXPECT_TRUE(Plan(in).order);
}

TEST(Plan, OrdersWhenADomainIsMissing) {
  PlanInput in = Base();
  in.domains = {"imap.example.com", "mail.example.com"};
  PlanDecision d = Plan(in);
  EXPECT_TRUE(d.order);
  EXPECT_EQ(d.reason, "the stored certificate lacks a domain");
  // Fewer domains than certified: the certificate still covers them.
  in.domains = {};
  EXPECT_FALSE(Plan(in).order);
}

TEST(Plan, OnlyTheOrdererOrders) {
  PlanInput in = Base();
  in.not_after = 0;
  in.orderer = false;
  PlanDecision d = Plan(in);
  EXPECT_FALSE(d.order);
  EXPECT_EQ(d.reason, "no certificate stored");  // said, not done
}

TEST(Plan, WaitsForTheRetryTime) {
  PlanInput in = Base();
  in.not_after = 0;
  in.retry_at = kNow + 1;
  EXPECT_FALSE(Plan(in).order);
  in.retry_at = kNow;
  EXPECT_TRUE(Plan(in).order);
}

TEST(Plan, InstallsAStoredCertificateThatDiffersWhileValid) {
  PlanInput in = Base();
  in.stored_differs = true;
  EXPECT_TRUE(Plan(in).install);
  // Due for renewal but still valid: installed, and a renewal ordered.
  in.not_after = kNow + kDay;
  PlanDecision d = Plan(in);
  EXPECT_TRUE(d.install);
  EXPECT_TRUE(d.order);
  // Expired: never installed.
  in.not_after = kNow;
  EXPECT_FALSE(Plan(in).install);
  // Nothing stored: nothing to install.
  in.not_after = 0;
  EXPECT_FALSE(Plan(in).install);
}

TEST(DomainsToCertify, FallsBackAndNormalizes) {
  EXPECT_EQ(DomainsToCertify({}, "Mail.Example.COM."),
            (std::vector<std::string>{"mail.example.com"}));
  EXPECT_EQ(DomainsToCertify({"b.example.com", "A.example.com", "b.example.com"}, "x"),
            (std::vector<std::string>{"a.example.com", "b.example.com"}));
}

TEST(RetryDelay, DoublesUpToTheCap) {
  EXPECT_EQ(RetryDelay(1, 60, 3600), 60);
  EXPECT_EQ(RetryDelay(2, 60, 3600), 120);
  EXPECT_EQ(RetryDelay(3, 60, 3600), 240);
  EXPECT_EQ(RetryDelay(7, 60, 3600), 3600);
  EXPECT_EQ(RetryDelay(1000, 60, 3600), 3600);
  EXPECT_EQ(RetryDelay(1, 0, 10), 1);
}

}  // namespace
}  // namespace porcupine::acme
