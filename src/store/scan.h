// Range scans over the store's column families. Internal to src/store.
#pragma once

#include <rocksdb/db.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/records.pb.h"

namespace porcupine::store {

// Calls fn(key, value) for every key of `cf` that starts with `prefix` (all
// keys when empty), in key order, reading at `snapshot` (null: the latest
// state). Stops at and returns fn's first error, or a read error.
Status ForEachWithPrefix(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                         const rocksdb::Snapshot* snapshot, const std::string& prefix,
                         const std::function<Status(std::string_view, std::string_view)>& fn);

// Store::ScanUsers over the msg and profile families: merges the users with
// a live message and the users with a non-tombstoned profile in buckets
// [first, last] (REQUIRES first <= last), each once, in key order, from one
// snapshot.
Status ScanUsersIn(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* msg,
                   rocksdb::ColumnFamilyHandle* profile, uint16_t first, uint16_t last,
                   const std::function<void(uint16_t, const std::string&)>& fn);

// Store::ScanForRebuild over the msg and profile families, from one snapshot.
Status ScanBucketsIn(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* msg, rocksdb::ColumnFamilyHandle* profile,
    const std::vector<uint16_t>& buckets,
    const std::function<void(uint16_t, const std::string&, bool, const Profile*)>& fn);

}  // namespace porcupine::store
