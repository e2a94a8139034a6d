// The contents of a Batch: key-level writes recorded without a database, so
// a Batch can be built before (and independently of) any Store. The group
// committer turns the writes of many batches into one rocksdb::WriteBatch.
// Internal to src/store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/keys.h"
#include "store/store.h"

namespace porcupine::store {

// A message write, decided when its group is written (Batch::UpdateMessage).
struct MessageWrite {
  Bucket bucket = 0;
  std::string user;
  std::string key;  // keys::MessageKey(bucket, user, folder, id)
  MessageId id;
  MessageDecision decide;
  MessageOutcome* outcome = nullptr;  // may be null
};

// A profile merged with the stored copy when its group is written
// (Batch::MergeProfile).
struct ProfileMerge {
  std::string key;  // keys::UserPrefix(bucket, user)
  Profile profile;
};

struct WriteOp {
  keys::Cf cf = keys::Cf::kDefault;
  bool is_delete = false;
  std::string key;
  std::string value;  // empty for deletes
  // Set for a message write or a profile merge: cf, key and value are then unused.
  std::shared_ptr<MessageWrite> message;
  std::shared_ptr<ProfileMerge> profile;
};

struct WriteOps {
  std::vector<WriteOp> ops;
  size_t bytes = 0;  // sum of key and value sizes
  Status error;      // the first invalid call on the Batch; the commit fails with it
  // Users whose messages the batch changes, as MessagesVersionSlot()s.
  std::vector<uint32_t> touched;
};

// The replog key of the object a record names; InvalidArgument when it
// names none.
Result<std::string> LogKeyOf(Bucket bucket, const LogRecord& r);

// Store::MessagesVersion keeps one counter per slot; users share slots by
// hash (a shared slot only makes a reader re-list for nothing).
constexpr uint32_t kMessagesVersionSlots = 1u << 14;  // Store::kVersionSlots
uint32_t MessagesVersionSlot(const std::string& user);

}  // namespace porcupine::store
