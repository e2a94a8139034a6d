// Invariant checks that stay on in every build (DESIGN.md §9: a broken rule
// must be seen in production, not only in a debug build).
//
// PORCUPINE_INVARIANT(cond, what) evaluates `cond` always. When it is false:
// - debug builds (the ASan+UBSan build the tests run) abort with the message,
//   so a test that breaks a rule fails at the spot;
// - release builds log an error (the first few per site, then one in a
//   thousand) and count it: porcupine_invariant_violations_total on the
//   admin API's /metrics. The caller then goes on along the path it chose
//   for that case (each site says what it does), never into undefined
//   behaviour.
#pragma once

#include <atomic>
#include <cstdint>

namespace porcupine {

// One site's count, so that logging can be thinned per site.
struct InvariantSite {
  std::atomic<uint64_t> failures{0};
};

// Reports one failure (see above). Returns normally in release builds.
void InvariantFailed(InvariantSite& site, const char* condition, const char* what, const char* file,
                     int line);

// Failures since the process started, over every site.
uint64_t InvariantViolations();

}  // namespace porcupine

#define PORCUPINE_INVARIANT(cond, what)                                                         \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      static ::porcupine::InvariantSite porcupine_invariant_site_;                              \
      ::porcupine::InvariantFailed(porcupine_invariant_site_, #cond, what, __FILE__, __LINE__); \
    }                                                                                           \
  } while (false)
