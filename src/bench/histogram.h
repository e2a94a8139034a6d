// A small HDR-style latency histogram: log-spaced buckets, each split into
// 2^kSubBucketBits linear sub-buckets, so every recorded value is known to
// within a relative error of 2^-(kSubBucketBits-1) (< 1%) over the whole
// uint64 range, in constant memory (~60 KiB) and O(1) per Record().
//
// Thread-safety: none. Each worker thread records into its own histograms;
// they are merged with Merge() after the threads have joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace porcupine::bench {

class Histogram {
 public:
  // Linear sub-buckets per power of two; values below 2^kSubBucketBits are exact.
  static constexpr int kSubBucketBits = 8;

  Histogram();

  // Adds one observation (any unit; the bench records microseconds).
  void Record(uint64_t value);
  // Adds every observation of `other`.
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }

  // The nearest-rank percentile: the smallest recorded value v such that at
  // least p% of the observations are <= v, reported as the highest value of
  // v's bucket clamped to [min(), max()]. p in [0, 100]; 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket arithmetic, public for tests.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);
  static size_t BucketCount();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  // Saturates instead of wrapping (only the mean uses it).
  uint64_t sum_ = 0;
};

}  // namespace porcupine::bench
