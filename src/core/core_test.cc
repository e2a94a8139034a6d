#include <gtest/gtest.h>

#include "core/address.h"
#include "core/hash.h"
#include "core/hlc.h"
#include "core/password.h"
#include "core/status.h"

namespace porcupine {
namespace {

TEST(Status, CarriesCodeAndMessage) {
  Status st = Status::NotFound("no such user");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.ToString(), "not_found: no such user");
  EXPECT_TRUE(Status::Ok().ok());
  Result<int> r(7);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);
  Result<int> e(Status::Unavailable("down"));
  EXPECT_EQ(e.status().code(), Code::kUnavailable);
}

TEST(Address, Canonical) {
  EXPECT_EQ(CanonicalAddress("Alice@Example.TEST"), "alice@example.test");
  EXPECT_EQ(CanonicalAddress("a\"b@x"), "a\"b@x");
  EXPECT_FALSE(CanonicalAddress("no-at-sign"));
  EXPECT_FALSE(CanonicalAddress("@example.test"));
  EXPECT_FALSE(CanonicalAddress("alice@"));
  EXPECT_FALSE(CanonicalAddress("al ice@x"));
  EXPECT_FALSE(CanonicalAddress(std::string(300, 'a') + "@x"));
  EXPECT_EQ(DomainOf("alice@example.test"), "example.test");
  EXPECT_EQ(LoginToAddress("Alice", "example.test"), "alice@example.test");
  EXPECT_EQ(LoginToAddress("bob@other.test", "example.test"), "bob@other.test");
}

TEST(Hash, BucketIsStableAndInRange) {
  // Persisted across nodes and versions: these values must never change.
  EXPECT_EQ(Hash64("alice@example.test"), Hash64("alice@example.test"));
  EXPECT_NE(Hash64("alice@example.test"), Hash64("bob@example.test"));
  for (int i = 0; i < 1000; ++i) EXPECT_LT(BucketOf("user" + std::to_string(i), 256), 256);
  std::vector<int> counts(16);
  for (int i = 0; i < 16000; ++i) ++counts[BucketOf("u" + std::to_string(i), 16)];
  for (int c : counts) EXPECT_NEAR(c, 1000, 150);
}

TEST(Hlc, MonotonicDespiteClockGoingBack) {
  int64_t wall = 1000;
  Hlc hlc([&] { return wall; });
  uint64_t a = hlc.Now();
  wall = 900;  // the wall clock steps back
  uint64_t b = hlc.Now();
  EXPECT_GT(b, a);
  hlc.Observe(Hlc::Make(5000, 3));
  EXPECT_GT(hlc.Now(), Hlc::Make(5000, 3));
  wall = 6000;
  EXPECT_EQ(hlc.Now(), Hlc::Make(6000, 0));
  EXPECT_EQ(Hlc::PhysicalMs(Hlc::Make(6000, 9)), 6000);
}

TEST(Password, HashAndVerify) {
  PasswordCost cheap{1, 8};
  Result<std::string> h = HashPassword("s3cret", cheap);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword(*h, "s3cret"));
  EXPECT_FALSE(VerifyPassword(*h, "s3cret "));
  EXPECT_FALSE(VerifyPassword("garbage", "s3cret"));
}

}  // namespace
}  // namespace porcupine
