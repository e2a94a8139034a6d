// Random workload shapes: message sizes, recipient popularity, arrivals.
//
// Every sampler is deterministic given its inputs and the caller's engine, so
// a run is reproducible from --seed. Thread-safety: samplers are immutable
// after construction and may be shared; the engine is the caller's.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace porcupine::bench {

using Rng = std::mt19937_64;

// Long-tailed message sizes: lognormal with the given mean and shape sigma,
// capped at `max` and floored at `min`. Real mail sizes are roughly lognormal
// (many small notes, a tail of attachments).
class SizeSampler {
 public:
  // REQUIRES: 0 < min <= mean <= max, sigma >= 0.
  SizeSampler(double mean, double sigma, uint64_t min, uint64_t max);
  uint64_t Sample(Rng& rng) const;

 private:
  double mu_;
  double sigma_;
  uint64_t min_;
  uint64_t max_;
};

// Ranks 0..n-1 with P(rank k) proportional to 1/(k+1)^s (Zipf). s = 0 is
// uniform. Uses rejection-inversion (Hoermann and Derflinger 1996): O(1)
// memory and expected O(1) time per sample for any n, so millions of users
// cost nothing up front.
class ZipfSampler {
 public:
  // REQUIRES: n >= 1, s >= 0.
  ZipfSampler(uint32_t n, double s);
  uint32_t Sample(Rng& rng) const;
  uint32_t size() const { return n_; }
  // P(rank k), computed in O(n); for tests.
  double Probability(uint32_t k) const;

 private:
  double H(double x) const;         // the integral of h(x) = x^-s
  double HInverse(double x) const;  // its inverse
  double h(double x) const;

  uint32_t n_;
  double s_;
  double h_x1_ = 0;  // H(1.5) - 1
  double h_n_ = 0;   // H(n + 0.5)
  double squeeze_ = 0;
};

// Draws `k` distinct ranks from `zipf` (k <= zipf.size()); after a bounded
// number of rejected duplicates it fills with the next unused ranks, so the
// loop always ends.
std::vector<uint32_t> SampleDistinct(const ZipfSampler& zipf, uint32_t k, Rng& rng);

// Open-loop arrivals at `rate` per second: Poisson (exponential gaps) or
// evenly spaced. Next() returns the next arrival in seconds from the start.
class ArrivalSchedule {
 public:
  // REQUIRES: rate > 0.
  ArrivalSchedule(double rate, bool poisson, uint64_t seed)
      : gap_(1.0 / rate), poisson_(poisson), rng_(seed) {}
  double Next();

 private:
  double gap_;
  bool poisson_;
  Rng rng_;
  double t_ = 0;
};

}  // namespace porcupine::bench
