// Stable hashing (xxHash XXH3). Values are persisted and shared between nodes:
// never change the function for an existing cluster.
#pragma once

#include <cstdint>
#include <string_view>

namespace porcupine {

uint64_t Hash64(std::string_view bytes);

// The user-map bucket of a canonical user address (DESIGN.md §2).
// REQUIRES: buckets >= 1.
inline uint16_t BucketOf(std::string_view user, uint32_t buckets) {
  return static_cast<uint16_t>(Hash64(user) % buckets);
}

}  // namespace porcupine
