#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace porcupine::bench {
namespace {

constexpr int kK = Histogram::kSubBucketBits;
constexpr uint64_t kLinear = uint64_t{1} << kK;      // exact values 0..kLinear-1
constexpr uint64_t kHalf = uint64_t{1} << (kK - 1);  // sub-buckets per later power of two

}  // namespace

// Values below 2^k get one bucket each. A larger value with bit width m keeps
// its top k bits t (2^(k-1) <= t < 2^k) and drops shift = m - k low bits;
// each shift owns 2^(k-1) buckets after the linear range.
size_t Histogram::BucketIndex(uint64_t value) {
  if (value < kLinear) return static_cast<size_t>(value);
  int shift = std::bit_width(value) - kK;
  uint64_t top = value >> shift;
  return static_cast<size_t>(kLinear + (shift - 1) * kHalf + (top - kHalf));
}

uint64_t Histogram::BucketLow(size_t index) {
  if (index < kLinear) return index;
  uint64_t rel = index - kLinear;
  int shift = static_cast<int>(rel / kHalf) + 1;
  uint64_t top = kHalf + rel % kHalf;
  return top << shift;
}

uint64_t Histogram::BucketHigh(size_t index) {
  if (index < kLinear) return index;
  uint64_t rel = index - kLinear;
  int shift = static_cast<int>(rel / kHalf) + 1;
  uint64_t top = kHalf + rel % kHalf;
  // Never overflows: the last bucket's high is exactly UINT64_MAX.
  return (top << shift) + ((uint64_t{1} << shift) - 1);
}

size_t Histogram::BucketCount() { return BucketIndex(UINT64_MAX) + 1; }

Histogram::Histogram() : counts_(BucketCount(), 0) {}

void Histogram::Record(uint64_t value) {
  ++counts_[BucketIndex(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ = value > UINT64_MAX - sum_ ? UINT64_MAX : sum_ + value;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ = other.sum_ > UINT64_MAX - sum_ ? UINT64_MAX : sum_ + other.sum_;
}

uint64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank, 1-based: ceil(p/100 * n), at least 1.
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketHigh(i), min_, max_);
  }
  return max_;  // unreachable: the counts sum to count_
}

}  // namespace porcupine::bench
