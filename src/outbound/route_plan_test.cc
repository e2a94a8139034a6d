// The routing planner, rule by rule (docs/outbound.md "DNS"). Randomness
// comes from fixed seeds.
#include "outbound/route_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace porcupine::outbound {
namespace {

MxAnswer Mx(std::vector<MxRecord> records) { return {LookupStatus::kOk, std::move(records), {}}; }
MxAnswer MxStatus(LookupStatus s) { return {s, {}, "why"}; }

HostAnswers V4(std::vector<std::string> a) {
  HostAnswers h;
  h.v4 = {LookupStatus::kOk, std::move(a), {}};
  return h;
}
HostAnswers V4V6(std::vector<std::string> a, std::vector<std::string> aaaa) {
  HostAnswers h = V4(std::move(a));
  h.v6 = {LookupStatus::kOk, std::move(aaaa), {}};
  return h;
}
HostAnswers Failed(LookupStatus v4, LookupStatus v6) {
  HostAnswers h;
  h.v4.status = v4;
  h.v6.status = v6;
  return h;
}

std::vector<std::string> Names(const MxStage& st) {
  std::vector<std::string> out;
  for (const MxHost& h : st.hosts) out.push_back(h.name);
  return out;
}
std::vector<std::string> Addresses(const RoutePlan& p) {
  std::vector<std::string> out;
  for (const RouteTarget& t : p.targets) out.push_back(t.address);
  return out;
}

class PlanTest : public ::testing::Test {
 protected:
  MxStage Stage(const MxAnswer& mx, const std::string& domain = "example.test") {
    return PlanMx(domain, mx, self_, limits_, rng_);
  }
  SelfIdentity self_{{"mx.self.test"}, {"198.51.100.7"}};
  RouteLimits limits_;
  std::mt19937_64 rng_{42};
};

TEST_F(PlanTest, MxSortedByPreference) {
  MxStage st =
      Stage(Mx({{30, "c.example.test."}, {10, "A.Example.Test."}, {20, "b.example.test"}}));
  ASSERT_EQ(st.verdict, Verdict::kRoute);
  EXPECT_EQ(Names(st),
            (std::vector<std::string>{"a.example.test", "b.example.test", "c.example.test"}));
  EXPECT_EQ(st.best_preference, 10);
  EXPECT_FALSE(st.hosts[0].implicit);
}

TEST_F(PlanTest, EqualPreferencesAreShuffledBySeedAndStayBehindBetterOnes) {
  MxAnswer mx = Mx({{20, "z.test"}, {10, "a.test"}, {10, "b.test"}, {10, "c.test"}});
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    std::mt19937_64 rng(seed);
    MxStage st = PlanMx("example.test", mx, self_, limits_, rng);
    ASSERT_EQ(st.hosts.size(), 4u);
    EXPECT_EQ(st.hosts[3].name, "z.test");  // the worse preference is never mixed in
    firsts.insert(st.hosts[0].name);
    // The same seed gives the same order: the source is the injected one.
    std::mt19937_64 again(seed);
    EXPECT_EQ(Names(PlanMx("example.test", mx, self_, limits_, again)), Names(st));
    // ... whatever order the server sent the records in.
    MxAnswer rotated = mx;
    std::rotate(rotated.records.begin(), rotated.records.begin() + 2, rotated.records.end());
    std::mt19937_64 third(seed);
    EXPECT_EQ(Names(PlanMx("example.test", rotated, self_, limits_, third)), Names(st));
  }
  EXPECT_EQ(firsts, (std::set<std::string>{"a.test", "b.test", "c.test"}));
}

TEST_F(PlanTest, NoMxMeansImplicitMx) {
  for (MxAnswer mx : {MxStatus(LookupStatus::kNoData), Mx({})}) {
    MxStage st = Stage(mx, "Example.Test.");
    ASSERT_EQ(st.verdict, Verdict::kRoute);
    ASSERT_EQ(st.hosts.size(), 1u);
    EXPECT_EQ(st.hosts[0].name, "example.test");
    EXPECT_TRUE(st.hosts[0].implicit);
    RoutePlan plan = PlanAddresses(st, {{"example.test", V4({"192.0.2.1"})}}, self_, limits_);
    EXPECT_EQ(plan.verdict, Verdict::kRoute);
    EXPECT_TRUE(plan.implicit_mx);
    EXPECT_EQ(Addresses(plan), std::vector<std::string>{"192.0.2.1"});
  }
}

TEST_F(PlanTest, ImplicitMxWithoutAddressIsPermanent) {
  MxStage st = Stage(MxStatus(LookupStatus::kNoData));
  RoutePlan plan = PlanAddresses(
      st, {{"example.test", Failed(LookupStatus::kNoData, LookupStatus::kNoData)}}, self_, limits_);
  EXPECT_EQ(plan.verdict, Verdict::kPermanent);
  EXPECT_EQ(plan.dsn, "5.4.4");
  // The name vanished between the two queries: as if it never existed.
  plan = PlanAddresses(st,
                       {{"example.test", Failed(LookupStatus::kNxDomain, LookupStatus::kNxDomain)}},
                       self_, limits_);
  EXPECT_EQ(plan.dsn, "5.1.2");
}

TEST_F(PlanTest, NullMx) {
  MxStage st = Stage(Mx({{0, "."}}));
  EXPECT_EQ(st.verdict, Verdict::kPermanent);
  EXPECT_EQ(st.dsn, "5.1.10");
  EXPECT_TRUE(st.hosts.empty());
  EXPECT_EQ(PlanFromStage(st).dsn, "5.1.10");
  // Only "." records, whatever the preference: the same statement.
  EXPECT_EQ(Stage(Mx({{10, ""}, {20, "."}})).dsn, "5.1.10");
  // A "." among real hosts is ignored.
  MxStage mixed = Stage(Mx({{0, "."}, {10, "mx.example.test"}}));
  EXPECT_EQ(mixed.verdict, Verdict::kRoute);
  EXPECT_EQ(Names(mixed), std::vector<std::string>{"mx.example.test"});
}

TEST_F(PlanTest, FailureClasses) {
  MxStage nx = Stage(MxStatus(LookupStatus::kNxDomain));
  EXPECT_EQ(nx.verdict, Verdict::kPermanent);
  EXPECT_EQ(nx.dsn, "5.1.2");
  for (LookupStatus s : {LookupStatus::kServFail, LookupStatus::kTimeout}) {
    MxStage st = Stage(MxStatus(s));
    EXPECT_EQ(st.verdict, Verdict::kTemporary);
    EXPECT_EQ(st.dsn, "4.4.3");
    EXPECT_NE(st.reason.find(LookupStatusName(s)), std::string::npos) << st.reason;
  }
}

TEST_F(PlanTest, MxNamingAnAddressIsUsedWithoutLookup) {
  MxStage st = Stage(Mx({{10, "192.0.2.9"}, {20, "2001:db8::9"}}));
  ASSERT_EQ(st.verdict, Verdict::kRoute);
  EXPECT_EQ(st.hosts[0].literal, "192.0.2.9");
  EXPECT_EQ(st.hosts[1].literal, "2001:db8::9");
  RoutePlan plan = PlanAddresses(st, {}, self_, limits_);
  ASSERT_EQ(plan.verdict, Verdict::kRoute);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"192.0.2.9", "2001:db8::9"}));
  EXPECT_FALSE(plan.targets[0].v6);
  EXPECT_TRUE(plan.targets[1].v6);
}

TEST_F(PlanTest, MxThroughCnameKeepsTheMxName) {
  // The resolver follows the CNAME; the plan names the MX host, as TLS
  // certificate checks need.
  MxStage st = Stage(Mx({{10, "alias.example.test"}}));
  RoutePlan plan = PlanAddresses(st, {{"alias.example.test", V4({"192.0.2.5"})}}, self_, limits_);
  ASSERT_EQ(plan.verdict, Verdict::kRoute);
  EXPECT_EQ(plan.targets[0].host, "alias.example.test");
}

TEST_F(PlanTest, OwnNameDropsItselfAndWorse) {
  MxStage st = Stage(Mx(
      {{10, "primary.test"}, {20, "MX.SELF.TEST."}, {30, "worse.test"}, {20, "same-pref.test"}}));
  ASSERT_EQ(st.verdict, Verdict::kRoute);
  EXPECT_EQ(Names(st), std::vector<std::string>{"primary.test"});
  EXPECT_TRUE(st.self_cut);
  EXPECT_EQ(st.best_preference, 10);
}

TEST_F(PlanTest, OwnNameAsBestMxLoops) {
  MxStage st = Stage(Mx({{10, "mx.self.test"}, {20, "backup.test"}}));
  EXPECT_EQ(st.verdict, Verdict::kPermanent);
  EXPECT_EQ(st.dsn, "5.4.6");
  // The domain itself, by implicit MX.
  MxStage implicit = Stage(MxStatus(LookupStatus::kNoData), "mx.self.test");
  EXPECT_EQ(implicit.dsn, "5.4.6");
}

TEST_F(PlanTest, BackupMxWhosePrimaryDoesNotResolveDefers) {
  MxStage st = Stage(Mx({{10, "primary.test"}, {20, "mx.self.test"}}));
  RoutePlan plan = PlanAddresses(
      st, {{"primary.test", Failed(LookupStatus::kNxDomain, LookupStatus::kNxDomain)}}, self_,
      limits_);
  EXPECT_EQ(plan.verdict, Verdict::kTemporary);
  EXPECT_EQ(plan.dsn, "4.4.4");
}

TEST_F(PlanTest, OwnAddressCutsLikeOwnName) {
  MxStage st = Stage(Mx({{10, "a.test"}, {20, "b.test"}, {30, "c.test"}}));
  RoutePlan plan = PlanAddresses(st,
                                 {{"a.test", V4({"192.0.2.1"})},
                                  {"b.test", V4({"198.51.100.7"})},
                                  {"c.test", V4({"192.0.2.3"})}},
                                 self_, limits_);
  ASSERT_EQ(plan.verdict, Verdict::kRoute);
  EXPECT_EQ(Addresses(plan), std::vector<std::string>{"192.0.2.1"});
  // We are the best MX by address: a loop.
  plan = PlanAddresses(st,
                       {{"a.test", V4({"198.51.100.7"})},
                        {"b.test", V4({"192.0.2.2"})},
                        {"c.test", V4({"192.0.2.3"})}},
                       self_, limits_);
  EXPECT_EQ(plan.verdict, Verdict::kPermanent);
  EXPECT_EQ(plan.dsn, "5.4.6");
  // A better MX exists but has no address: defer.
  plan = PlanAddresses(st,
                       {{"a.test", Failed(LookupStatus::kNoData, LookupStatus::kNoData)},
                        {"b.test", V4({"198.51.100.7"})},
                        {"c.test", V4({"192.0.2.3"})}},
                       self_, limits_);
  EXPECT_EQ(plan.verdict, Verdict::kTemporary);
  EXPECT_EQ(plan.dsn, "4.4.4");
}

TEST_F(PlanTest, HostsWithoutAddressAreSkipped) {
  MxStage st = Stage(Mx({{10, "dead.test"}, {20, "live.test"}}));
  RoutePlan plan =
      PlanAddresses(st,
                    {{"dead.test", Failed(LookupStatus::kServFail, LookupStatus::kTimeout)},
                     {"live.test", V4({"192.0.2.2"})}},
                    self_, limits_);
  ASSERT_EQ(plan.verdict, Verdict::kRoute);
  EXPECT_EQ(Addresses(plan), std::vector<std::string>{"192.0.2.2"});
}

TEST_F(PlanTest, NoHostWithAddress) {
  MxStage st = Stage(Mx({{10, "a.test"}, {20, "b.test"}}));
  RoutePlan perm =
      PlanAddresses(st,
                    {{"a.test", Failed(LookupStatus::kNxDomain, LookupStatus::kNxDomain)},
                     {"b.test", Failed(LookupStatus::kNoData, LookupStatus::kNoData)}},
                    self_, limits_);
  EXPECT_EQ(perm.verdict, Verdict::kPermanent);
  EXPECT_EQ(perm.dsn, "5.4.4");
  EXPECT_NE(perm.reason.find("a.test: A nxdomain"), std::string::npos) << perm.reason;
  // One temporary failure among them makes the whole temporary.
  RoutePlan temp =
      PlanAddresses(st,
                    {{"a.test", Failed(LookupStatus::kNxDomain, LookupStatus::kNxDomain)},
                     {"b.test", Failed(LookupStatus::kNoData, LookupStatus::kTimeout)}},
                    self_, limits_);
  EXPECT_EQ(temp.verdict, Verdict::kTemporary);
  EXPECT_EQ(temp.dsn, "4.4.3");
  // A host the driver did not look up is a temporary failure, not a bounce.
  RoutePlan missing = PlanAddresses(st, {}, self_, limits_);
  EXPECT_EQ(missing.verdict, Verdict::kTemporary);
}

TEST_F(PlanTest, FamilyPreferenceAndFilter) {
  MxStage st = Stage(Mx({{10, "a.test"}, {20, "b.test"}}));
  std::map<std::string, HostAnswers> answers = {
      {"a.test", V4V6({"192.0.2.1", "192.0.2.2"}, {"2001:db8::1"})},
      {"b.test", V4V6({"192.0.2.3"}, {"2001:db8::3"})}};
  limits_.max_addresses = 10;
  RoutePlan plan = PlanAddresses(st, answers, self_, limits_);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"2001:db8::1", "192.0.2.1", "192.0.2.2",
                                                       "2001:db8::3", "192.0.2.3"}));
  limits_.preference = AddressPreference::kIpv4;
  plan = PlanAddresses(st, answers, self_, limits_);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"192.0.2.1", "192.0.2.2", "2001:db8::1",
                                                       "192.0.2.3", "2001:db8::3"}));
  limits_.families = AddressFamilies::kIpv4Only;
  plan = PlanAddresses(st, answers, self_, limits_);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"192.0.2.1", "192.0.2.2", "192.0.2.3"}));
  limits_.families = AddressFamilies::kIpv6Only;
  plan = PlanAddresses(st, answers, self_, limits_);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"2001:db8::1", "2001:db8::3"}));
}

TEST_F(PlanTest, DuplicatesKeepTheirBestPlace) {
  MxStage st = Stage(Mx({{10, "a.test"}, {20, "b.test"}, {30, "a.test"}}));
  EXPECT_EQ(Names(st), (std::vector<std::string>{"a.test", "b.test"}));
  RoutePlan plan =
      PlanAddresses(st, {{"a.test", V4({"192.0.2.1"})}, {"b.test", V4({"192.0.2.1", "192.0.2.2"})}},
                    self_, limits_);
  EXPECT_EQ(Addresses(plan), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(plan.targets[1].host, "b.test");
}

TEST_F(PlanTest, Limits) {
  std::vector<MxRecord> many;
  for (int i = 0; i < 30; ++i) many.push_back({static_cast<uint16_t>(i), "h" + std::to_string(i)});
  limits_.max_mx_hosts = 3;
  MxStage st = Stage(Mx(many));
  EXPECT_EQ(Names(st), (std::vector<std::string>{"h0", "h1", "h2"}));
  limits_.max_addresses = 4;
  RoutePlan plan = PlanAddresses(st,
                                 {{"h0", V4({"192.0.2.1", "192.0.2.2", "192.0.2.3"})},
                                  {"h1", V4({"192.0.2.4", "192.0.2.5"})},
                                  {"h2", V4({"192.0.2.6"})}},
                                 self_, limits_);
  EXPECT_EQ(Addresses(plan),
            (std::vector<std::string>{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}));
}

TEST_F(PlanTest, DefaultLimits) {
  RouteLimits d;
  EXPECT_EQ(d.max_mx_hosts, 10u);
  EXPECT_EQ(d.max_addresses, 5u);
}

TEST(PlanWithoutDns, AddressLiterals) {
  SelfIdentity self{{}, {"198.51.100.7", "2001:db8::7"}};
  std::optional<RoutePlan> p = PlanWithoutDns("[192.0.2.1]", self);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->verdict, Verdict::kRoute);
  EXPECT_EQ(Addresses(*p), std::vector<std::string>{"192.0.2.1"});
  p = PlanWithoutDns("[IPv6:2001:DB8:0::1]", self);
  ASSERT_TRUE(p);
  EXPECT_EQ(Addresses(*p), std::vector<std::string>{"2001:db8::1"});
  EXPECT_TRUE(p->targets[0].v6);
  for (const char* bad :
       {"[300.1.1.1]", "[192.0.2.1", "[IPv6:192.0.2.1]", "[2001:db8::1]", "[tag:whatever]", "[]"}) {
    p = PlanWithoutDns(bad, self);
    ASSERT_TRUE(p) << bad;
    EXPECT_EQ(p->verdict, Verdict::kPermanent) << bad;
    EXPECT_EQ(p->dsn, "5.1.2") << bad;
  }
  p = PlanWithoutDns("[198.51.100.7]", self);
  EXPECT_EQ(p->dsn, "5.4.6");
  p = PlanWithoutDns("[IPv6:2001:db8:0:0::7]", self);
  EXPECT_EQ(p->dsn, "5.4.6");
}

TEST(PlanWithoutDns, NamesGoToDnsUnlessMalformed) {
  SelfIdentity self;
  EXPECT_FALSE(PlanWithoutDns("example.test", self));
  EXPECT_FALSE(PlanWithoutDns("Example.Test.", self));
  EXPECT_FALSE(PlanWithoutDns("_srv.x-y.test", self));
  std::string long_label(64, 'a');
  for (std::string bad :
       {std::string(), std::string("."), std::string("a..b"), std::string("a b.test"),
        std::string("bücher.test"), long_label + ".test", std::string(254, 'a')}) {
    std::optional<RoutePlan> p = PlanWithoutDns(bad, self);
    ASSERT_TRUE(p) << bad;
    EXPECT_EQ(p->verdict, Verdict::kPermanent) << bad;
    EXPECT_EQ(p->dsn, "5.1.2") << bad;
  }
}

}  // namespace
}  // namespace porcupine::outbound
