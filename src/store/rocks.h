// RocksDB configuration and status mapping of the store (docs/storage.md).
// Internal to src/store.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <memory>
#include <string_view>

#include "core/status.h"
#include "store/keys.h"

namespace porcupine::store {

struct Options;

// DB-wide options: create if missing, WAL on, point-in-time recovery.
rocksdb::DBOptions MakeDbOptions(const Options& options);
// Options of one column family; `cache` is the block cache they share.
rocksdb::ColumnFamilyOptions MakeCfOptions(const Options& options, keys::Cf cf,
                                           const std::shared_ptr<rocksdb::Cache>& cache);
// Options for a column family this version does not know (kept, not used).
rocksdb::ColumnFamilyOptions MakeUnknownCfOptions();

// Maps a RocksDB status to ours, prefixing the message with `what`.
Status FromRocks(const rocksdb::Status& s, std::string_view what);

}  // namespace porcupine::store
