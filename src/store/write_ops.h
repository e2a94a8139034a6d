// The contents of a Batch: key-level writes recorded without a database, so
// a Batch can be built before (and independently of) any Store. The group
// committer turns the writes of many batches into one rocksdb::WriteBatch.
// Internal to src/store.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/keys.h"

namespace porcupine::store {

struct WriteOp {
  keys::Cf cf = keys::Cf::kDefault;
  bool is_delete = false;
  std::string key;
  std::string value;  // empty for deletes
};

struct WriteOps {
  std::vector<WriteOp> ops;
  size_t bytes = 0;  // sum of key and value sizes
  Status error;      // the first invalid call on the Batch; the commit fails with it
  // Users whose messages the batch changes, as MessagesVersionSlot()s.
  std::vector<uint32_t> touched;
};

// Store::MessagesVersion keeps one counter per slot; users share slots by
// hash (a shared slot only makes a reader re-list for nothing).
constexpr uint32_t kMessagesVersionSlots = 1u << 14;  // Store::kVersionSlots
uint32_t MessagesVersionSlot(const std::string& user);

}  // namespace porcupine::store
