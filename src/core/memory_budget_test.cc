#include "core/memory_budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace porcupine {
namespace {

TEST(MemoryBudgetTest, TakesUpToTheLimitAndCountsRefusals) {
  MemoryBudget b(100);
  EXPECT_TRUE(b.TryTake(60));
  EXPECT_TRUE(b.TryTake(40));
  EXPECT_EQ(b.used(), 100u);
  EXPECT_FALSE(b.TryTake(1));
  EXPECT_EQ(b.used(), 100u);
  EXPECT_EQ(b.refusals(), 1u);
  b.Give(60);
  EXPECT_EQ(b.used(), 40u);
  EXPECT_FALSE(b.TryTake(UINT64_MAX));  // no overflow
  EXPECT_TRUE(b.TryTake(60));
  EXPECT_EQ(b.peak(), 100u);
  EXPECT_EQ(b.refusals(), 2u);
}

TEST(MemoryReservationTest, GrowsShrinksAndGivesBackWhenDestroyed) {
  MemoryBudget b(100);
  {
    MemoryReservation r(&b);
    EXPECT_TRUE(r.Resize(30));
    EXPECT_TRUE(r.Resize(80));
    EXPECT_EQ(b.used(), 80u);
    MemoryReservation other(&b);
    EXPECT_FALSE(other.Resize(30));  // only 20 left
    EXPECT_EQ(other.bytes(), 0u);
    EXPECT_FALSE(r.Resize(101));
    EXPECT_EQ(r.bytes(), 80u);  // a failed growth keeps what was held
    EXPECT_TRUE(r.Resize(10));
    EXPECT_EQ(b.used(), 10u);
    EXPECT_TRUE(other.Resize(90));
    MemoryReservation moved = std::move(other);
    EXPECT_EQ(moved.bytes(), 90u);
    EXPECT_EQ(b.used(), 100u);
    moved = std::move(r);  // gives its own 90 back, takes r's 10
    EXPECT_EQ(b.used(), 10u);
  }
  EXPECT_EQ(b.used(), 0u);
}

TEST(MemoryReservationTest, WithoutABudgetEverythingIsGranted) {
  MemoryReservation r;
  EXPECT_TRUE(r.Resize(UINT64_MAX));
  EXPECT_EQ(r.bytes(), UINT64_MAX);
  r.Reset();
  EXPECT_EQ(r.bytes(), 0u);
}

TEST(MemoryBudgetTest, ConcurrentHoldersNeverExceedTheLimit) {
  MemoryBudget b(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b] {
      MemoryReservation r(&b);
      for (int i = 0; i < 20000; ++i) {
        if (r.Resize(static_cast<uint64_t>(i % 7) * 100)) {
          EXPECT_LE(b.used(), b.limit());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(b.used(), 0u);
  EXPECT_LE(b.peak(), 1000u);
}

}  // namespace
}  // namespace porcupine
