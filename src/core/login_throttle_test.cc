#include "core/login_throttle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/lru_map.h"

namespace porcupine {
namespace {

using Scope = LoginThrottle::Scope;
using std::chrono::milliseconds;
using std::chrono::seconds;

LoginThrottleOptions Small() {
  LoginThrottleOptions o;
  o.failures_before_delay = 3;
  o.delay_initial = milliseconds(100);
  o.delay_max = milliseconds(800);
  o.failures_before_lockout = 8;
  o.lockout = seconds(60);
  o.forget_after = seconds(600);
  o.trust = seconds(3600);
  return o;
}

// One failed login of `account` from `address` at `now`: the delay it got,
// or -1 when it was refused (at Admit or at Finish).
int64_t Fail(LoginThrottle& t, const std::string& address, const std::string& account,
             int64_t now) {
  if (t.Admit(address, account, now).refused) return -1;
  LoginThrottle::Verdict v = t.Finish(address, account, false, now);
  return v.refused ? -1 : v.delay_ms;
}

// The same for a login with the right password.
int64_t Succeed(LoginThrottle& t, const std::string& address, const std::string& account,
                int64_t now) {
  if (t.Admit(address, account, now).refused) return -1;
  LoginThrottle::Verdict v = t.Finish(address, account, true, now);
  return v.refused ? -1 : v.delay_ms;
}

TEST(LoginThrottle, DelaysGrowThenLockout) {
  LoginThrottle t(Small());
  std::vector<int64_t> got;
  for (int i = 0; i < 12; ++i) got.push_back(Fail(t, "10.0.0.1", "alice", 1000 + i));
  // Three answered at once, then 100, 200, 400, 800 (the cap), 800; the
  // eighth failure locks: the rest are refused unchecked.
  EXPECT_EQ(got, (std::vector<int64_t>{0, 0, 0, 100, 200, 400, 800, 800, -1, -1, -1, -1}));
  LoginThrottle::Admission a = t.Admit("10.0.0.1", "alice", 2000);
  EXPECT_TRUE(a.refused);
  EXPECT_EQ(a.retry_after_ms, 1007 + 60000 - 2000);
}

TEST(LoginThrottle, RightPasswordsWaitTheSameDelay) {
  // Answering a right password early would give it away.
  LoginThrottle t(Small());
  for (int i = 0; i < 5; ++i) Fail(t, "10.0.0.1", "alice", 0);
  EXPECT_EQ(Succeed(t, "10.0.0.1", "alice", 0), 400);
}

TEST(LoginThrottle, LockoutEndsAfterItsTimeAndTheNextFailureLocksAgain) {
  LoginThrottle t(Small());
  for (int i = 0; i < 8; ++i) Fail(t, "10.0.0.1", "alice", 0);
  EXPECT_TRUE(t.Admit("10.0.0.1", "alice", 59999).refused);
  EXPECT_FALSE(t.Admit("10.0.0.1", "alice", 60000).refused);
  // Still remembered: the next failure waits the longest delay and locks again.
  EXPECT_EQ(Fail(t, "10.0.0.1", "alice", 60000), 800);
  EXPECT_TRUE(t.Admit("10.0.0.1", "alice", 60001).refused);
  EXPECT_EQ(Succeed(t, "10.0.0.1", "alice", 120000), 800);
}

TEST(LoginThrottle, FailuresAreForgottenAfterTheirTime) {
  LoginThrottle t(Small());
  for (int i = 0; i < 5; ++i) Fail(t, "10.0.0.1", "alice", 0);
  EXPECT_EQ(Fail(t, "10.0.0.1", "alice", 599999), 400);  // the sixth, still remembered
  EXPECT_EQ(Fail(t, "10.0.0.1", "alice", 599999 + 600000), 0);
  EXPECT_EQ(t.stats().addresses, 1u);
}

TEST(LoginThrottle, CountsPerAddressAndPerAccount) {
  LoginThrottle t(Small());
  // One address trying many accounts: the address locks.
  for (int i = 0; i < 8; ++i) Fail(t, "10.0.0.1", "user" + std::to_string(i), 0);
  LoginThrottle::Admission a = t.Admit("10.0.0.1", "fresh", 1);
  EXPECT_TRUE(a.refused);
  EXPECT_EQ(a.by, Scope::kAddress);
  EXPECT_FALSE(t.Admit("10.0.0.2", "fresh", 1).refused);
  // Many addresses trying one account: the account locks, for every address.
  for (int i = 0; i < 8; ++i) Fail(t, "10.1.0." + std::to_string(i), "bob", 0);
  a = t.Admit("10.2.0.1", "bob", 1);
  EXPECT_TRUE(a.refused);
  EXPECT_EQ(a.by, Scope::kAccount);
  EXPECT_FALSE(t.Admit("10.2.0.1", "carol", 1).refused);
}

TEST(LoginThrottle, AttemptsInFlightWhenTheLockCameAreRefused) {
  // Concurrent attempts all pass Admit; those finishing after the lock must
  // not reveal their result, right password or not.
  LoginThrottle t(Small());
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(t.Admit("10.0.0.1", "alice", 0).refused);
  int answered = 0;
  for (int i = 0; i < 19; ++i) answered += !t.Finish("10.0.0.1", "alice", false, 0).refused;
  EXPECT_EQ(answered, 8);
  LoginThrottle::Verdict v = t.Finish("10.0.0.1", "alice", true, 0);
  EXPECT_TRUE(v.refused);
}

TEST(LoginThrottle, SuccessTrustsItsPairButResetsNothing) {
  LoginThrottle t(Small());
  EXPECT_EQ(Succeed(t, "10.0.0.9", "alice", 0), 0);  // alice's usual client
  // An attack on alice from elsewhere locks the account ...
  for (int i = 0; i < 8; ++i) Fail(t, "10.1.0." + std::to_string(i), "alice", 10);
  EXPECT_TRUE(t.Admit("10.2.0.1", "alice", 20).refused);
  // ... but not for her usual client, which is not delayed either.
  EXPECT_EQ(Succeed(t, "10.0.0.9", "alice", 20), 0);
  // An attacker with an account of its own gains nothing from its successes.
  for (int i = 0; i < 3; ++i) Fail(t, "10.3.0.1", "victim" + std::to_string(i), 30);
  EXPECT_EQ(Succeed(t, "10.3.0.1", "mallory", 31), 100);
  EXPECT_EQ(Fail(t, "10.3.0.1", "victim9", 32), 100);
  EXPECT_EQ(Fail(t, "10.3.0.1", "victim10", 33), 200);
}

TEST(LoginThrottle, TrustEndsWithFailuresOrTime) {
  LoginThrottle t(Small());
  Succeed(t, "10.0.0.9", "alice", 0);
  for (int i = 0; i < 8; ++i) Fail(t, "10.1.0." + std::to_string(i), "alice", 0);
  // The trusted pair's own failures: two are forgiven, the third ends the trust.
  EXPECT_EQ(Fail(t, "10.0.0.9", "alice", 1), 0);
  EXPECT_EQ(Fail(t, "10.0.0.9", "alice", 1), 0);
  EXPECT_EQ(Fail(t, "10.0.0.9", "alice", 1), 0);
  EXPECT_TRUE(t.Admit("10.0.0.9", "alice", 2).refused);
  // Trust expires.
  LoginThrottle u(Small());
  Succeed(u, "10.0.0.9", "bob", 0);
  for (int i = 0; i < 8; ++i) Fail(u, "10.1.0." + std::to_string(i), "bob", 3599000);
  EXPECT_FALSE(u.Admit("10.0.0.9", "bob", 3599999).refused);
  EXPECT_TRUE(u.Admit("10.0.0.9", "bob", 3600000).refused);
}

TEST(LoginThrottle, TablesAreBoundedAndForgetTheOldestFirst) {
  LoginThrottleOptions o = Small();
  o.max_addresses = 3;
  o.max_accounts = 3;
  o.max_trusted = 2;
  LoginThrottle t(o);
  for (int i = 0; i < 8; ++i) Fail(t, "10.0.0.1", "alice", 0);
  ASSERT_TRUE(t.Admit("10.0.0.1", "x", 1).refused);
  // Failures from three other addresses for three other accounts push the
  // oldest records out.
  for (int i = 2; i <= 4; ++i) {
    Fail(t, "10.0.0." + std::to_string(i), "u" + std::to_string(i), 2);
  }
  LoginThrottle::Stats s = t.stats();
  EXPECT_EQ(s.addresses, 3u);
  EXPECT_EQ(s.accounts, 3u);
  EXPECT_EQ(s.evicted, 2u);
  EXPECT_FALSE(t.Admit("10.0.0.1", "alice", 3).refused);
  for (int i = 0; i < 5; ++i) Succeed(t, "10.0.1." + std::to_string(i), "bob", 4);
  EXPECT_EQ(t.stats().trusted, 2u);
  EXPECT_EQ(t.stats().evicted, 5u);
}

TEST(LoginThrottle, ForgottenRecordsLeaveTheTables) {
  LoginThrottle t(Small());
  for (int i = 0; i < 100; ++i) {
    Fail(t, "10.0.0." + std::to_string(i), "u" + std::to_string(i), 0);
  }
  EXPECT_EQ(t.stats().addresses, 100u);
  EXPECT_EQ(t.stats().accounts, 100u);
  Fail(t, "10.9.9.9", "v", 600000);
  EXPECT_EQ(t.stats().addresses, 1u);
  EXPECT_EQ(t.stats().accounts, 1u);
  EXPECT_EQ(t.stats().evicted, 0u);
}

TEST(LruMap, EvictsTheLeastRecentlyTouched) {
  LruMap<std::string, int> m(2);
  m.Touch("a") = 1;
  m.Touch("b") = 2;
  m.Touch("a");  // a is now the most recent
  bool evicted = false;
  m.Touch("c", &evicted) = 3;
  EXPECT_TRUE(evicted);
  EXPECT_EQ(m.Find("b"), nullptr);
  ASSERT_NE(m.Find("a"), nullptr);
  EXPECT_EQ(*m.Find("a"), 1);
  EXPECT_EQ(m.size(), 2u);
  m.EraseOldestWhile([](int v) { return v < 2; });
  EXPECT_EQ(m.Find("a"), nullptr);
  EXPECT_EQ(m.size(), 1u);
  m.Erase("c");
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace porcupine
