#include "bench/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace porcupine::bench {
namespace {

TEST(SizeSampler, MeanWithinToleranceAndCapRespected) {
  SizeSampler sizes(4700, 1.0, 1, 1 << 20);
  Rng rng(1);
  double sum = 0;
  uint64_t max = 0;
  uint64_t above_mean = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    uint64_t s = sizes.Sample(rng);
    ASSERT_GE(s, 1u);
    ASSERT_LE(s, uint64_t{1} << 20);
    sum += static_cast<double>(s);
    max = std::max(max, s);
    above_mean += s > 4700;
  }
  EXPECT_NEAR(sum / n, 4700, 4700 * 0.03);
  // Long-tailed: most messages are below the mean, a few far above it.
  EXPECT_LT(above_mean, n * 0.4);
  EXPECT_GT(max, 4700u * 10);
}

TEST(SizeSampler, TightCapClampsEverySample) {
  SizeSampler sizes(1000, 2.0, 1, 1500);
  Rng rng(2);
  int at_cap = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t s = sizes.Sample(rng);
    ASSERT_LE(s, 1500u);
    at_cap += s == 1500;
  }
  EXPECT_GT(at_cap, 1000);  // the tail piles up at the cap
}

TEST(SizeSampler, ZeroSigmaIsConstant) {
  SizeSampler sizes(4700, 0, 1, 1 << 20);
  Rng rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sizes.Sample(rng), 4700u);
}

// Rank frequencies against 1/(k+1)^s normalized, for several exponents
// including s = 1 (a special case of the inversion formulas).
TEST(ZipfSampler, RankFrequenciesMatchTheLaw) {
  for (double s : {0.0, 0.5, 1.0, 1.5}) {
    const uint32_t n = 50;
    ZipfSampler zipf(n, s);
    Rng rng(4);
    std::vector<int> counts(n);
    const int draws = 400000;
    for (int i = 0; i < draws; ++i) {
      uint32_t r = zipf.Sample(rng);
      ASSERT_LT(r, n);
      ++counts[r];
    }
    for (uint32_t k : {0u, 1u, 2u, 9u, 49u}) {
      double want = zipf.Probability(k) * draws;
      // 5 standard deviations of a binomial count, plus a little.
      double tol = 5 * std::sqrt(want) + 5;
      EXPECT_NEAR(counts[k], want, tol) << "s=" << s << " k=" << k;
    }
  }
}

TEST(ZipfSampler, HugePopulationNeedsNoTable) {
  ZipfSampler zipf(10'000'000, 1.1);
  Rng rng(5);
  int top = 0;
  for (int i = 0; i < 100000; ++i) {
    uint32_t r = zipf.Sample(rng);
    ASSERT_LT(r, 10'000'000u);
    top += r == 0;
  }
  EXPECT_GT(top, 100000 / 20);  // rank 0 is hot
}

TEST(ZipfSampler, SingleUser) {
  ZipfSampler zipf(1, 2.0);
  Rng rng(6);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(zipf.Sample(rng), 0u);
}

TEST(SampleDistinct, AlwaysDistinctEvenUnderHeavySkew) {
  ZipfSampler zipf(5, 8.0);  // nearly always rank 0
  Rng rng(7);
  for (int i = 0; i < 100; ++i) {
    std::vector<uint32_t> r = SampleDistinct(zipf, 5, rng);
    EXPECT_EQ(std::set<uint32_t>(r.begin(), r.end()).size(), 5u);
  }
}

TEST(ArrivalSchedule, PoissonMeanGapAndUniformSpacing) {
  ArrivalSchedule poisson(200, true, 8);
  double last = 0;
  for (int i = 0; i < 20000; ++i) {
    double t = poisson.Next();
    ASSERT_GE(t, last);
    last = t;
  }
  EXPECT_NEAR(last / 20000, 1.0 / 200, 0.05 / 200);
  ArrivalSchedule even(4, false, 8);
  EXPECT_DOUBLE_EQ(even.Next(), 0.25);
  EXPECT_DOUBLE_EQ(even.Next(), 0.5);
}

}  // namespace
}  // namespace porcupine::bench
