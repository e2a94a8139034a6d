#include "core/invariant.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace porcupine {

namespace {
std::atomic<uint64_t> g_violations{0};
constexpr uint64_t kLoggedInFull = 10;  // per site, then one in kLogEvery
constexpr uint64_t kLogEvery = 1000;
}  // namespace

void InvariantFailed(InvariantSite& site, const char* condition, const char* what, const char* file,
                     int line) {
  g_violations.fetch_add(1, std::memory_order_relaxed);
  [[maybe_unused]] const uint64_t n = site.failures.fetch_add(1, std::memory_order_relaxed) + 1;
#ifndef NDEBUG
  std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", file, line, what, condition);
  std::abort();
#else
  if (n <= kLoggedInFull || n % kLogEvery == 0) {
    spdlog::error("invariant failed at {}:{}: {} ({}); {} time(s) here", file, line, what,
                  condition, n);
  }
#endif
}

uint64_t InvariantViolations() { return g_violations.load(std::memory_order_relaxed); }

}  // namespace porcupine
