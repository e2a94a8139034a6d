#include "bench/sampling.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace porcupine::bench {

SizeSampler::SizeSampler(double mean, double sigma, uint64_t min, uint64_t max)
    // E[lognormal(mu, sigma)] = exp(mu + sigma^2 / 2).
    : mu_(std::log(mean) - sigma * sigma / 2), sigma_(sigma), min_(min), max_(max) {
  assert(min > 0 && min <= mean && mean <= static_cast<double>(max) && sigma >= 0);
}

uint64_t SizeSampler::Sample(Rng& rng) const {
  double x = std::exp(mu_ + sigma_ * std::normal_distribution<double>(0, 1)(rng));
  if (!(x < static_cast<double>(max_))) return max_;  // also catches inf/nan
  return std::clamp(static_cast<uint64_t>(std::llround(x)), min_, max_);
}

namespace {

// log1p(x)/x and expm1(x)/x, accurate near 0.
double Helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}
double Helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(uint32_t n, double s) : n_(n), s_(s) {
  assert(n >= 1 && s >= 0);
  if (s == 0) return;
  h_x1_ = H(1.5) - 1.0;
  h_n_ = H(n + 0.5);
  squeeze_ = 2 - HInverse(H(2.5) - h(2));
}

double ZipfSampler::h(double x) const { return std::exp(-s_ * std::log(x)); }

double ZipfSampler::H(double x) const {
  double log_x = std::log(x);
  return Helper2((1 - s_) * log_x) * log_x;
}

double ZipfSampler::HInverse(double x) const {
  double t = std::max(-1.0, x * (1 - s_));
  return std::exp(Helper1(t) * x);
}

uint32_t ZipfSampler::Sample(Rng& rng) const {
  if (s_ == 0) return std::uniform_int_distribution<uint32_t>(0, n_ - 1)(rng);
  std::uniform_real_distribution<double> unit(0, 1);
  // Expected iterations are below 1.1 for every n and s; the bound is a
  // guard against floating-point surprises, not part of the algorithm.
  for (int i = 0; i < 1000; ++i) {
    double u = h_n_ + unit(rng) * (h_x1_ - h_n_);
    double x = HInverse(u);
    double k = std::clamp(std::floor(x + 0.5), 1.0, static_cast<double>(n_));
    if (k - x <= squeeze_ || u >= H(k + 0.5) - h(k)) return static_cast<uint32_t>(k) - 1;
  }
  return 0;
}

double ZipfSampler::Probability(uint32_t k) const {
  if (k >= n_) return 0;
  if (s_ == 0) return 1.0 / n_;
  double sum = 0;
  for (uint32_t i = n_; i >= 1; --i) sum += std::pow(i, -s_);  // small terms first
  return std::pow(k + 1.0, -s_) / sum;
}

std::vector<uint32_t> SampleDistinct(const ZipfSampler& zipf, uint32_t k, Rng& rng) {
  assert(k <= zipf.size());
  std::vector<uint32_t> out;
  out.reserve(k);
  auto used = [&](uint32_t r) { return std::find(out.begin(), out.end(), r) != out.end(); };
  // Under heavy skew duplicates are common; give up sampling after a bound.
  for (uint32_t tries = 0; out.size() < k && tries < 16 * k; ++tries) {
    uint32_t r = zipf.Sample(rng);
    if (!used(r)) out.push_back(r);
  }
  for (uint32_t r = 0; out.size() < k; ++r) {
    if (!used(r)) out.push_back(r);
  }
  return out;
}

double ArrivalSchedule::Next() {
  t_ += poisson_ ? std::exponential_distribution<double>(1.0 / gap_)(rng_) : gap_;
  return t_;
}

}  // namespace porcupine::bench
