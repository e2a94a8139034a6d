// The node's hard state in one RocksDB database (DESIGN.md §5,
// docs/storage.md): messages (metadata apart from bodies), profiles, the
// replication log and node metadata. Keys of user data start with the bucket
// so one bucket is one contiguous key range.
//
// Writes are grouped: Submit() queues a Batch; one committer thread writes
// every queued batch and makes them durable with a single WAL sync, then runs
// each batch's callback. Nothing is reported committed before that sync.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/message_id.h"
#include "store/records.pb.h"
#include "store/version.h"

namespace rocksdb {
class FileSystem;
}

namespace porcupine {
class ChangeSignal;
}

namespace porcupine::store {

using Bucket = uint16_t;
struct WriteOps;  // store/write_ops.h
constexpr uint32_t kInboxFolder = 1;

struct Options {
  std::string data_dir;  // created if missing; the DB lives in data_dir/db
  bool sync = true;      // WAL fsync per group; false only for benchmarks of the CPU path
  size_t max_group_batches = 4096;         // batches merged into one sync at most
  size_t max_group_bytes = 64ull << 20;    // bytes merged into one sync at most (a larger
                                           // single batch still goes alone)
  size_t body_blob_min_bytes = 4096;       // bodies at least this large go to RocksDB blob files
  size_t block_cache_bytes = 64ull << 20;  // one LRU block cache shared by all column families
  // Memtable size of the msg, body, profile and replog families (meta and
  // default: 1 MiB); a full memtable is flushed to a table file. The
  // default is RocksDB's; tests set it small to make flushes frequent.
  size_t write_buffer_bytes = 64ull << 20;
  // Tests only: the file system RocksDB uses (e.g. store/power_cut_fs.h).
  // Null, always in the daemon: the local file system.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

// The version of a record in the order of store/version.h.
inline uint64_t VersionOf(const MessageMeta& m) { return MessageVersion(m.hlc(), m.tombstone()); }

// What a message write decides, given the record stored when its group is
// written (Batch::UpdateMessage).
struct MessageChange {
  enum class Action {
    kKeep,   // write nothing
    kPut,    // store `meta` (live or tombstone); a tombstone drops the body
    kPurge,  // remove a tombstone's record (tombstone garbage collection)
  };
  Action action = Action::kKeep;
  MessageMeta meta;  // kPut: the new record, of the same folder and id
  // kPut of a live record: the body, written when no record exists yet. A
  // live record is never created without one.
  std::shared_ptr<const std::string> body;
  // Written with the change, and only if the change is applied (the
  // replication log entry of this version).
  std::optional<LogRecord> log;
};

// What became of one message write, filled in on the committer thread
// before the batch's callback runs.
struct MessageOutcome {
  bool applied = false;  // the decided kPut or kPurge was written
  // kPut or kPurge refused because it would break a rule of the store: not
  // later than the record held, a live record without its body, a purge of
  // a live record.
  bool refused = false;
  std::optional<MessageMeta> after;  // the record once the group is written; nullopt: none
};

// Decides a message write from the stored record (nullptr: none). Runs on the
// committer thread while it writes a group: it must be quick and must not
// block or touch the Store.
using MessageDecision = std::function<MessageChange(const MessageMeta* current)>;

// A set of writes committed atomically and durably together. Built without a
// Store; nothing touches the disk until Store::Submit/Commit.
//
// Invalid input (a user name empty or longer than 255 bytes, a message id
// that is not 16 bytes, a record version other than 0 or 1, PutMessage of a
// tombstone) is not reported by the call: the batch remembers the first such
// error and its commit fails with InvalidArgument, writing nothing.
// Records with version 0 (unset) are stored with version 1.
//
// Thread-compatible: one thread at a time. A moved-from Batch is empty.
class Batch {
 public:
  Batch();
  ~Batch();
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;

  // Every message write is decided against the record stored when its group
  // is written, never against an earlier read, and obeys the store's rules:
  // a record is only replaced by a later version (VersionOf), a live record
  // is created only with its body, only a tombstone is purged. A write that
  // would break one is left out (counted in Stats::message_writes_refused);
  // the rest of the batch is written.

  // Stores a message's metadata under (bucket, user, meta.folder(),
  // meta.id()) when it is later than the record held, with its body under
  // meta.id() when the record is new (body copied now). `outcome`, when not
  // null, must live until the batch's callback ran.
  // REQUIRES: !meta.tombstone() (use DeleteMessage).
  void PutMessage(Bucket bucket, const std::string& user, const MessageMeta& meta,
                  const std::string* body, MessageOutcome* outcome = nullptr);
  void PutMessage(Bucket bucket, const std::string& user, const MessageMeta& meta,
                  std::shared_ptr<const std::string> body, MessageOutcome* outcome = nullptr);
  // Replaces the message's metadata with `tombstone` (the tombstone bit is
  // set whatever the argument says) and drops the body, unless the record
  // held is a later tombstone.
  void DeleteMessage(Bucket bucket, const std::string& user, const MessageMeta& tombstone,
                     MessageOutcome* outcome = nullptr);
  // Removes the record of a tombstone entirely (tombstone garbage
  // collection); a live record is kept. The body went with DeleteMessage.
  void PurgeMessage(Bucket bucket, const std::string& user, uint32_t folder, const MessageId& id);
  // A read-modify-write of one message: `decide` runs on the committer
  // thread with the record as it is then (earlier batches of the same group
  // included), so no change that landed after the caller's own read is
  // overwritten. `outcome` as for PutMessage.
  void UpdateMessage(Bucket bucket, const std::string& user, uint32_t folder, const MessageId& id,
                     MessageDecision decide, MessageOutcome* outcome = nullptr);
  // Stores (or replaces) the profile of profile.user(); a tombstoned profile
  // is stored like any other.
  void PutProfile(Bucket bucket, const Profile& profile);
  // Stores the merge (store/profile_merge.h) of `profile` with the copy of
  // profile.user() held when the group is written (earlier batches of the
  // group included), or `profile` when none is held: no change that landed
  // after the caller's own read is lost.
  void MergeProfile(Bucket bucket, const Profile& profile);
  // Removes the profile row entirely.
  void DeleteProfile(Bucket bucket, const std::string& user);
  // Stores (or replaces) the replication log entry of the object named by
  // the record (kind, user, folder, id); InvalidArgument (as above) for an
  // unknown kind, a bad user or id.
  void PutLog(Bucket bucket, const LogRecord& record);
  // Removes the log entry of that object.
  void DeleteLog(Bucket bucket, const LogRecord& record);
  // True when no write was recorded (an invalid call records none).
  bool empty() const;
  // Bytes of keys and values recorded.
  size_t ByteSize() const;
  // The first invalid call's error, OK if none. Commit fails with it.
  Status status() const;

 private:
  friend class Store;
  struct Rep;
  Rep& rep();
  // Moves the recorded writes out (store/write_ops.h); leaves the batch empty.
  WriteOps TakeOps();
  std::unique_ptr<Rep> rep_;  // null after a move
};

class Store {
 public:
  // Opens or creates the database. On first creation node metadata is
  // written from `init` (node id, name, buckets). Returns IoError/Corruption on
  // failure, InvalidArgument when the stored format version is unknown.
  static Result<std::unique_ptr<Store>> Open(const Options& options, const NodeMeta& init);
  ~Store();  // stops the committer after draining queued batches
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The node metadata as stored (the first Open's `init` wins).
  const NodeMeta& node_meta() const;

  // A number that changes whenever a commit that changes any of `user`'s
  // messages (any folder) becomes visible, and never repeats across Opens;
  // never 0. Read it before a listing: the same number later means nothing
  // of the user's changed since (users sharing a slot change it too).
  uint64_t MessagesVersion(const std::string& user) const;
  // The same by slot: users share one of kVersionSlots by hash
  // (VersionSlotOf). REQUIRES: slot < kVersionSlots.
  static constexpr uint32_t kVersionSlots = 1u << 14;
  static uint32_t VersionSlotOf(const std::string& user);
  uint64_t SlotVersion(uint32_t slot) const;
  // Changes whenever any slot's version does (a cheap first check), after
  // the slots' versions moved; VersionsChanged() wakes whoever waits for it.
  uint64_t VersionsGeneration() const;
  ChangeSignal& VersionsChanged();

  // Queues a batch; `done` runs on the committer thread after the batch is
  // durable (OK), or failed: the batch's own error (Batch::status()), or the
  // group write's error (IoError when the WAL sync failed; every batch of the
  // group gets it and none of them is visible). Never blocks on I/O. After
  // Close() begins, done is called at once, on the calling thread, with
  // Unavailable. `done` must not block for long: it delays the next group.
  void Submit(Batch batch, std::function<void(Status)> done);
  // Submit and wait for the result. REQUIRES: not called from a `done`
  // callback (returns Internal there instead of deadlocking).
  Status Commit(Batch batch);

  // Reads. Each call sees one consistent state. With options.sync a group is
  // written with sync=true and becomes visible only after its WAL sync, so
  // reads never see data a crash could still take away. Reads keep working
  // after Close(). User names are checked like in Batch (InvalidArgument);
  // stored records that do not parse, carry an unknown version or disagree
  // with their key give Corruption.

  // Every live (non-tombstone unless include_tombstones) message of one user
  // folder, ordered by message id.
  Result<std::vector<MessageMeta>> ListMessages(Bucket bucket, const std::string& user,
                                                uint32_t folder, bool include_tombstones = false);
  Result<std::optional<MessageMeta>> GetMessage(Bucket bucket, const std::string& user,
                                                uint32_t folder, const MessageId& id);
  // Whether the user has a live message in any folder.
  Result<bool> HasLiveMessages(Bucket bucket, const std::string& user);
  Result<std::string> ReadBody(const MessageId& id);  // NotFound when absent
  Result<std::optional<Profile>> GetProfile(Bucket bucket, const std::string& user);

  // Calls fn(bucket, user) once per user that has live messages or a
  // non-tombstoned profile in buckets [first, last], in key order: by bucket,
  // then user length, then user bytes (reconstruction scans). Nothing when
  // first > last.
  Status ScanUsers(Bucket first, Bucket last,
                   const std::function<void(Bucket, const std::string&)>& fn);
  // Calls fn for every stored profile (including tombstoned ones).
  Status ScanProfiles(const std::function<void(Bucket, const Profile&)>& fn);
  // Reconstruction scan (manager/rebuild.h): for each of `buckets` in the
  // given order, calls fn(bucket, user, has_live_message, profile) once per
  // user that has a live message or a profile record there (profile null
  // when none; tombstoned profiles are passed too), in key order, all from
  // one snapshot.
  Status ScanForRebuild(
      const std::vector<Bucket>& buckets,
      const std::function<void(Bucket, const std::string&, bool, const Profile*)>& fn);

  // Every message record (tombstones too) of buckets [first, last], in key
  // order, from one snapshot. Nothing when first > last.
  Status ScanMessages(
      Bucket first, Bucket last,
      const std::function<void(Bucket, const std::string&, const MessageMeta&)>& fn);
  // Every profile record (tombstones too) of buckets [first, last], in key order.
  Status ScanBucketProfiles(Bucket first, Bucket last,
                            const std::function<void(Bucket, const Profile&)>& fn);

  // Every replication log entry (any order).
  Status ScanLog(const std::function<void(const LogRecord&)>& fn);

  // Small durable values of the node in the meta family (e.g. the membership
  // Lamport floor), written with a synced write of their own, outside group
  // commit. InvalidArgument for the reserved name "node" or an empty name.
  Status PutMeta(const std::string& name, const std::string& value);
  // nullopt when never written.
  Result<std::optional<std::string>> GetMeta(const std::string& name);

  // Statistics for metrics.
  struct Stats {
    uint64_t syncs = 0;       // WAL syncs performed (group writes when options.sync)
    uint64_t groups = 0;      // group writes, synced or not
    uint64_t batches = 0;     // batches committed
    uint64_t bytes = 0;       // bytes of committed batches (Batch::ByteSize)
    uint64_t failed = 0;      // batches whose callback got an error (not Unavailable at close)
    uint64_t last_group = 0;  // batches in the latest sync
    // Message writes left out because they broke a rule of the store (see
    // Batch): a version not later than the one held, a live record without
    // its body, a purge of a live record.
    uint64_t message_writes_refused = 0;
    // Group writes by batches per group: [0] one, [i] (2^(i-1), 2^i], last: more.
    std::array<uint64_t, 14> group_sizes{};
  };
  Stats stats() const;
  // Pending batches not yet durable (a load signal for the balancer).
  size_t pending() const;

  // Stops accepting batches, commits what is queued, stops the committer.
  // Idempotent; the destructor calls it.
  void Close();

 private:
  Store();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::store
