#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace porcupine::bench {
namespace {

// The nearest-rank percentile of a sorted sample, the definition Histogram
// approximates.
uint64_t Reference(const std::vector<uint64_t>& sorted, double p) {
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

TEST(Histogram, BucketsTileTheRangeWithoutGaps) {
  EXPECT_EQ(Histogram::BucketLow(0), 0u);
  for (size_t i = 1; i < Histogram::BucketCount(); ++i) {
    ASSERT_EQ(Histogram::BucketLow(i), Histogram::BucketHigh(i - 1) + 1) << i;
  }
  EXPECT_EQ(Histogram::BucketHigh(Histogram::BucketCount() - 1), UINT64_MAX);
}

TEST(Histogram, IndexRoundTripsAndBoundsRelativeError) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    size_t b = Histogram::BucketIndex(v);
    ASSERT_LE(Histogram::BucketLow(b), v);
    ASSERT_GE(Histogram::BucketHigh(b), v);
    double width = static_cast<double>(Histogram::BucketHigh(b) - Histogram::BucketLow(b));
    ASSERT_LE(width, static_cast<double>(v) / 128.0) << v;  // 2^-(k-1) with k = 8
  }
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 256; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 127u);
  EXPECT_EQ(h.Percentile(100), 255u);
  EXPECT_EQ(h.Percentile(0), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 255u);
  EXPECT_DOUBLE_EQ(h.mean(), 127.5);
}

TEST(Histogram, EmptyReportsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

// Percentiles of long-tailed latencies against the exact sorted answer: within
// the bucket's relative error, never below the true value, never above max.
TEST(Histogram, PercentilesMatchSortedReference) {
  for (uint64_t seed : {1, 2, 3}) {
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> dist(8.0, 1.5);  // ~3 ms median in us
    std::vector<uint64_t> values;
    Histogram h;
    for (int i = 0; i < 50000; ++i) {
      auto v = static_cast<uint64_t>(dist(rng));
      values.push_back(v);
      h.Record(v);
    }
    std::sort(values.begin(), values.end());
    for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
      uint64_t want = Reference(values, p);
      uint64_t got = h.Percentile(p);
      EXPECT_GE(got, want) << "p" << p;
      EXPECT_LE(static_cast<double>(got), static_cast<double>(want) * (1 + 1.0 / 128) + 1)
          << "p" << p;
    }
    EXPECT_EQ(h.Percentile(100), values.back());
    EXPECT_EQ(h.max(), values.back());
    EXPECT_EQ(h.min(), values.front());
  }
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  for (uint64_t v = 1; v < 100000; v += 7) {
    (v % 3 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {50.0, 90.0, 99.0}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
}

}  // namespace
}  // namespace porcupine::bench
