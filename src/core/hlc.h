// Hybrid logical clock (DESIGN.md §5): 48 bits of physical milliseconds and a
// 16-bit logical counter in one totally ordered uint64. Ties between nodes are
// broken by the node id stored next to the timestamp (message ids, records).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace porcupine {

class Hlc {
 public:
  // physical_ms: the injected wall clock in milliseconds since the epoch.
  explicit Hlc(std::function<int64_t()> physical_ms) : physical_ms_(std::move(physical_ms)) {}

  // A timestamp larger than every one this clock returned or observed.
  uint64_t Now();
  // Merges a timestamp received from elsewhere so later Now() values exceed it.
  void Observe(uint64_t remote);

  static uint64_t Make(int64_t ms, uint16_t logical) {
    return (static_cast<uint64_t>(ms) << 16) | logical;
  }
  static int64_t PhysicalMs(uint64_t t) { return static_cast<int64_t>(t >> 16); }

 private:
  std::function<int64_t()> physical_ms_;
  std::atomic<uint64_t> last_{0};
};

// Milliseconds since the Unix epoch from the system clock.
int64_t SystemNowMs();
// Milliseconds on the monotonic clock (for timeouts and TTLs: never jumps).
int64_t SteadyNowMs();

}  // namespace porcupine
