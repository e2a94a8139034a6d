// Credentials: single flight, the cache of right passwords (TTL, changed
// hashes) and the dummy check of unknown users. The CPU pool is an
// io_context the test runs by hand, so every check has joined (or not)
// before any verification runs.
#include "manager/credentials.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/password.h"

namespace porcupine::manager {
namespace {

const PasswordCost kCheap{1, 8};

class CredentialsTest : public testing::Test {
 protected:
  CredentialsTest() : hash_(*HashPassword("right", kCheap)) { Make(100); }

  void Make(size_t entries) {
    CredentialsOptions o;
    o.cache_entries = entries;
    o.cache_ttl = std::chrono::seconds(60);
    o.dummy_hash = *DummyPasswordHash(kCheap);
    creds_ = std::make_unique<Credentials>(cpu_.get_executor(), o, [this] { return now_ms_; });
  }

  // Starts the checks, lets them all reach their wait, then runs the
  // verifications and the checks to their end; their results in order.
  std::vector<bool> CheckAll(
      const std::vector<std::tuple<std::string, std::string, std::string>>& checks) {
    std::vector<bool> got(checks.size());
    std::vector<bool> done(checks.size());
    for (size_t i = 0; i < checks.size(); ++i) {
      auto [user, password, hash] = checks[i];
      asio::co_spawn(io_, creds_->Check(user, password, hash),
                     [&got, &done, i](std::exception_ptr e, bool ok) {
                       EXPECT_FALSE(e);
                       got[i] = ok;
                       done[i] = true;
                     });
    }
    io_.restart();
    io_.poll();  // every check has joined a flight (or answered from the cache)
    cpu_.restart();
    cpu_.poll();  // the verifications
    io_.restart();
    io_.poll();
    for (size_t i = 0; i < checks.size(); ++i) EXPECT_TRUE(done[i]) << i;
    return got;
  }
  bool Check(const std::string& user, const std::string& password, const std::string& hash) {
    return CheckAll({{user, password, hash}})[0];
  }

  asio::io_context io_;
  asio::io_context cpu_;
  int64_t now_ms_ = 1000;
  std::string hash_;
  std::unique_ptr<Credentials> creds_;
};

TEST_F(CredentialsTest, ConcurrentIdenticalChecksVerifyOnce) {
  std::vector<std::tuple<std::string, std::string, std::string>> checks(10,
                                                                        {"alice", "right", hash_});
  checks.push_back({"alice", "wrong", hash_});
  checks.push_back({"alice", "wrong", hash_});
  std::vector<bool> got = CheckAll(checks);
  EXPECT_EQ(got, (std::vector<bool>{true, true, true, true, true, true, true, true, true, true,
                                    false, false}));
  Credentials::Stats s = creds_->stats();
  EXPECT_EQ(s.verifications, 2u);  // one per distinct (user, hash, password)
  EXPECT_EQ(s.joined, 10u);
  EXPECT_EQ(s.cache_hits, 0u);
}

TEST_F(CredentialsTest, RightPasswordsAreRememberedWrongOnesNever) {
  EXPECT_TRUE(Check("alice", "right", hash_));
  EXPECT_TRUE(Check("alice", "right", hash_));
  EXPECT_FALSE(Check("alice", "wrong", hash_));
  EXPECT_FALSE(Check("alice", "wrong", hash_));
  Credentials::Stats s = creds_->stats();
  EXPECT_EQ(s.verifications, 3u);
  EXPECT_EQ(s.cache_hits, 1u);
  EXPECT_EQ(s.cached, 1u);
  // The entry is alice's: another user with the same hash and password is
  // verified (the digest covers the user).
  EXPECT_TRUE(Check("bob", "right", hash_));
  EXPECT_EQ(creds_->stats().verifications, 4u);
}

TEST_F(CredentialsTest, AChangedHashForgetsTheRememberedPassword) {
  EXPECT_TRUE(Check("alice", "right", hash_));
  // The password changed: the stored hash is another one.
  const std::string changed = *HashPassword("new", kCheap);
  EXPECT_FALSE(Check("alice", "right", changed));
  EXPECT_TRUE(Check("alice", "new", changed));
  EXPECT_EQ(creds_->stats().verifications, 3u);
  // Back to the old hash (a stale copy): verified again, not taken from the cache.
  EXPECT_TRUE(Check("alice", "right", hash_));
  EXPECT_EQ(creds_->stats().verifications, 4u);
  EXPECT_EQ(creds_->stats().cache_hits, 0u);
}

TEST_F(CredentialsTest, RememberedPasswordsExpire) {
  EXPECT_TRUE(Check("alice", "right", hash_));
  now_ms_ += 59999;
  EXPECT_TRUE(Check("alice", "right", hash_));
  EXPECT_EQ(creds_->stats().cache_hits, 1u);
  now_ms_ += 1;
  EXPECT_TRUE(Check("alice", "right", hash_));
  EXPECT_EQ(creds_->stats().cache_hits, 1u);
  EXPECT_EQ(creds_->stats().verifications, 2u);
}

TEST_F(CredentialsTest, CacheIsBounded) {
  Make(2);
  for (const char* u : {"a", "b", "c"}) EXPECT_TRUE(Check(u, "right", hash_));
  EXPECT_EQ(creds_->stats().cached, 2u);
  EXPECT_TRUE(Check("a", "right", hash_));  // forgotten: the least recently used
  EXPECT_EQ(creds_->stats().verifications, 4u);
  Make(0);  // off: single flight only
  EXPECT_TRUE(Check("a", "right", hash_));
  EXPECT_TRUE(Check("a", "right", hash_));
  EXPECT_EQ(creds_->stats().verifications, 2u);
  EXPECT_EQ(creds_->stats().cached, 0u);
}

TEST_F(CredentialsTest, UnknownUsersAreVerifiedAgainstTheDummyAndFail) {
  EXPECT_FALSE(Check("nobody", "right", ""));
  EXPECT_FALSE(Check("nobody", "right", ""));
  Credentials::Stats s = creds_->stats();
  EXPECT_EQ(s.verifications, 2u);  // as costly as a wrong password, every time
  EXPECT_EQ(s.cached, 0u);
}

}  // namespace
}  // namespace porcupine::manager
