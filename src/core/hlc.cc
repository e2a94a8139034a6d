#include "core/hlc.h"

#include <chrono>

namespace porcupine {

uint64_t Hlc::Now() {
  uint64_t wall = Make(physical_ms_(), 0);
  uint64_t prev = last_.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t next = wall > prev ? wall : prev + 1;
    if (last_.compare_exchange_weak(prev, next, std::memory_order_relaxed)) return next;
  }
}

void Hlc::Observe(uint64_t remote) {
  uint64_t prev = last_.load(std::memory_order_relaxed);
  while (remote > prev && !last_.compare_exchange_weak(prev, remote, std::memory_order_relaxed)) {
  }
}

int64_t SystemNowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace porcupine
