// Anti-entropy between replicas (beyond the paper; docs/replication.md):
// two nodes compare, per bucket, what they hold of the objects they should
// both hold, and push each other what the other lacks or holds older. It
// repairs what the update log cannot: a replica whose disk was replaced, an
// update whose log entry was lost with its coordinator's disk. Pure
// functions; the daemon (node/anti_entropy_runtime.h) scans and sends.
#pragma once

#include <cstdint>
#include <vector>

#include "replication/replicator.h"

namespace porcupine::replication {

// One version of one object, as a node holds it.
struct Item {
  ObjectRef object;
  uint64_t hlc = 0;
  bool operator==(const Item&) const = default;
};

// Digest slots: messages of bucket b at b, profiles of bucket b at buckets + b.
inline uint32_t MessageSlot(uint32_t bucket) { return bucket; }
inline uint32_t ProfileSlot(uint32_t buckets, uint32_t bucket) { return buckets + bucket; }

// An order-independent digest of a set of items (XOR of item hashes): equal
// sets give equal digests; different sets almost surely differ.
uint64_t ItemHash(const Item& item);

// The slots whose digests differ. REQUIRES: same size.
std::vector<uint32_t> Differing(const std::vector<uint64_t>& mine,
                                const std::vector<uint64_t>& theirs);

// Compares one slot's items. `push`: what I hold newer than them, or they
// lack (I push it to them); `pull`: what they hold newer, or I lack (they
// push it to me). Both lists are of their holder's versions.
struct Comparison {
  std::vector<Item> push;
  std::vector<Item> pull;
};
Comparison Compare(std::vector<Item> mine, std::vector<Item> theirs);

}  // namespace porcupine::replication
