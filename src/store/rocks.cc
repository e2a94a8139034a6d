#include "store/rocks.h"

#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <string>

#include "store/store.h"

namespace porcupine::store {
namespace {

// Bodies are text and compress well; LZ4 is cheap. Falls back to none when
// the library was built without it.
rocksdb::CompressionType BlobCompression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  const bool lz4 =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  return lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

}  // namespace

rocksdb::DBOptions MakeDbOptions(const Options&) {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 4;  // info LOG files, not WAL files
  o.max_log_file_size = 16 << 20;
  // A torn or half-written tail of the WAL (crash during a write) ends
  // recovery at the last complete, checksum-valid record: exactly the writes
  // that were synced (and possibly some unsynced ones) survive.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.paranoid_checks = true;
  o.manual_wal_flush = false;
  o.allow_mmap_writes = false;
  // Rarely written families (meta) would otherwise pin old WAL files forever.
  o.max_total_wal_size = 512ull << 20;
  o.bytes_per_sync = 1 << 20;
  return o;
}

rocksdb::ColumnFamilyOptions MakeCfOptions(const Options& options, keys::Cf cf,
                                           const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions o;
  o.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  // Whole-key bloom filters serve the point lookups (GetMessage, GetProfile,
  // ReadBody, the node meta); scans use total order with bounds.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (cf == keys::Cf::kBody) {
    o.enable_blob_files = true;
    o.min_blob_size = options.body_blob_min_bytes;
    o.blob_compression_type = BlobCompression();
    // Deleted bodies leave garbage in blob files; compaction rewrites old ones.
    o.enable_blob_garbage_collection = true;
  }
  o.write_buffer_size = options.write_buffer_bytes;
  if (cf == keys::Cf::kMeta || cf == keys::Cf::kDefault) o.write_buffer_size = 1 << 20;
  return o;
}

rocksdb::ColumnFamilyOptions MakeUnknownCfOptions() { return rocksdb::ColumnFamilyOptions(); }

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string m = std::string("store: ") + std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  if (s.IsCorruption()) return Status::Corruption(std::move(m));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return Status::InvalidArgument(std::move(m));
  if (s.IsBusy() || s.IsTryAgain() || s.IsShutdownInProgress() || s.IsTimedOut()) {
    return Status::Unavailable(std::move(m));
  }
  if (s.IsNoSpace()) return Status::ResourceExhausted(std::move(m));
  return Status::IoError(std::move(m));
}

}  // namespace porcupine::store
