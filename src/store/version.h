// The order of a message record's versions (docs/replication.md,
// "Versions"): every tombstone comes after every live version (a deletion is
// final: a message id is never used for another message), then the HLC. The
// store never replaces a record with one that is not later in this order, and
// replicas, acknowledgements, anti-entropy and the simulation compare
// versions with it. Header-only and dependency-free for that reason.
#pragma once

#include <cstdint>

namespace porcupine::store {

inline constexpr uint64_t kTombstoneVersionBit = uint64_t{1} << 63;
inline constexpr uint64_t MessageVersion(uint64_t hlc, bool tombstone) {
  return hlc | (tombstone ? kTombstoneVersionBit : 0);
}

}  // namespace porcupine::store
