#include "store/store.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "core/change_signal.h"
#include "store/group_commit.h"
#include "store/keys.h"
#include "store/profile_merge.h"
#include "store/records.h"
#include "store/rocks.h"
#include "store/scan.h"
#include "store/write_ops.h"

namespace porcupine::store {

struct Store::Impl {
  Options options;
  std::unique_ptr<rocksdb::Env> env;  // over options.file_system; null: RocksDB's default
  std::shared_ptr<rocksdb::Cache> cache;
  std::unique_ptr<rocksdb::DB> db;
  // Every opened family; the first keys::kCfCount in keys::Cf order.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  NodeMeta meta;
  std::unique_ptr<GroupCommitter> committer;
  // MessagesVersion: bumped after each group that changes a slot's users is
  // visible; the base differs per Open, so versions never repeat across
  // restarts.
  std::unique_ptr<std::atomic<uint64_t>[]> versions {
    new std::atomic<uint64_t>[ kMessagesVersionSlots ]()
  };
  uint64_t version_base = 0;
  ChangeSignal versions_changed;  // moved on after each write that touched a slot

  ~Impl();
  rocksdb::ColumnFamilyHandle* cf(keys::Cf c) const { return handles[static_cast<size_t>(c)]; }
  Status OpenDb();
  Status LoadOrInitMeta(const NodeMeta& init);
  Status WriteGroup(const std::vector<const WriteOps*>& group);
  // Decides one message write against the stored record (or what an earlier
  // write of the group left at its key, in `written`) and adds its writes
  // to `wb`. An error only for a failed read.
  Status AddMessageWrite(const MessageWrite& w, rocksdb::WriteBatch& wb,
                         std::unordered_map<std::string, std::optional<MessageMeta>>& written);
  // The body part of a decided kPut: dropped with a tombstone, written with a
  // new live record (or to repair a live one that lacks it).
  void AddBodyWrite(const MessageId& id, const MessageChange& change, const MessageMeta* current,
                    rocksdb::WriteBatch& wb);
  // Merges a profile with the stored copy (or the group's earlier merge at
  // its key, in `merged`) and adds the result to `wb`.
  Status AddProfileMerge(const ProfileMerge& m, rocksdb::WriteBatch& wb,
                         std::unordered_map<std::string, Profile>& merged);
  std::atomic<uint64_t> message_writes_refused{0};
  // The value at `key` in `c`; nullopt when absent.
  Result<std::optional<std::string>> Get(keys::Cf c, const std::string& key);
};

Store::Impl::~Impl() {
  committer.reset();  // drains the queue while the DB is still open
  if (!db) return;
  for (rocksdb::ColumnFamilyHandle* h : handles)
    db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db->Close().PermitUncheckedError();  // WAL already synced per group; nothing to lose
}

namespace {

Status SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("store: open " + dir.string() + ": " + std::strerror(errno));
  const int r = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (r != 0) return Status::IoError("store: fsync " + dir.string() + ": " + std::strerror(err));
  return Status::Ok();
}

}  // namespace

Status Store::Impl::OpenDb() {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status::IoError("store: create " + options.data_dir + ": " + ec.message());
  const std::string path = options.data_dir + "/db";
  rocksdb::DBOptions db_options = MakeDbOptions(options);
  if (options.file_system) {
    env = rocksdb::NewCompositeEnv(options.file_system);
    db_options.env = env.get();
  }
  std::vector<std::string> existing;
  // Fails when the DB does not exist yet; then only the known families are made.
  rocksdb::DB::ListColumnFamilies(db_options, path, &existing).PermitUncheckedError();
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (size_t i = 0; i < keys::kCfCount; ++i) {
    families.emplace_back(std::string(keys::kCfNames[i]),
                          MakeCfOptions(options, static_cast<keys::Cf>(i), cache));
  }
  for (const std::string& name : existing) {
    bool known = false;
    for (std::string_view k : keys::kCfNames) known = known || name == k;
    if (!known) families.emplace_back(name, MakeUnknownCfOptions());
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, families, &handles, &raw);
  if (!s.ok()) return FromRocks(s, "open " + path);
  db.reset(raw);
  // RocksDB syncs what it creates inside db/; the entries leading to it
  // (db/ in the data directory, a new data directory in its parent) are
  // durable only once their directories are synced: else a power cut soon
  // after a node's first start could lose its whole store.
  const std::filesystem::path dir = std::filesystem::absolute(options.data_dir, ec);
  if (ec) return Status::IoError("store: " + options.data_dir + ": " + ec.message());
  PORCUPINE_RETURN_IF_ERROR(SyncDirectory(dir));
  if (dir.has_parent_path()) PORCUPINE_RETURN_IF_ERROR(SyncDirectory(dir.parent_path()));
  return Status::Ok();
}

Status Store::Impl::LoadOrInitMeta(const NodeMeta& init) {
  Result<std::optional<std::string>> stored = Get(keys::Cf::kMeta, std::string(keys::kNodeMetaKey));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    meta = init;
    meta.set_version(kRecordVersion);
    meta.set_format_version(kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db->Put(wo, cf(keys::Cf::kMeta), keys::kNodeMetaKey, meta.SerializeAsString()),
                     "write node meta");
  }
  Result<NodeMeta> decoded = DecodeNodeMeta(**stored);
  if (!decoded.ok()) return decoded.status();
  if (decoded->format_version() != kFormatVersion) {
    return Status::InvalidArgument("store: " + options.data_dir + " has format version " +
                                   std::to_string(decoded->format_version()) +
                                   ", this build reads only " + std::to_string(kFormatVersion));
  }
  meta = std::move(*decoded);
  return Status::Ok();
}

Status Store::Impl::WriteGroup(const std::vector<const WriteOps*>& group) {
  size_t bytes = 0;
  for (const WriteOps* w : group) bytes += w->bytes + 16 * w->ops.size();
  rocksdb::WriteBatch wb(bytes + 64);
  std::unordered_map<std::string, std::optional<MessageMeta>> written;
  std::unordered_map<std::string, Profile> profiles;  // merged by earlier batches of the group
  for (const WriteOps* w : group) {
    for (const WriteOp& op : w->ops) {
      if (op.message) {
        PORCUPINE_RETURN_IF_ERROR(AddMessageWrite(*op.message, wb, written));
        continue;
      }
      if (op.profile) {
        PORCUPINE_RETURN_IF_ERROR(AddProfileMerge(*op.profile, wb, profiles));
        continue;
      }
      rocksdb::Status s =
          op.is_delete ? wb.Delete(cf(op.cf), op.key) : wb.Put(cf(op.cf), op.key, op.value);
      if (!s.ok()) return FromRocks(s, "build group");
    }
  }
  rocksdb::WriteOptions wo;
  // One WAL write and, with sync, one fsync for the whole group. The group
  // becomes visible to readers only after the sync.
  wo.sync = options.sync;
  PORCUPINE_RETURN_IF_ERROR(FromRocks(db->Write(wo, &wb), "group write"));
  // Now visible: a reader that saw the old version re-lists next time.
  bool changed = false;
  for (const WriteOps* w : group) {
    for (uint32_t slot : w->touched) versions[slot].fetch_add(1, std::memory_order_release);
    changed = changed || !w->touched.empty();
  }
  if (changed) versions_changed.Notify();
  return Status::Ok();
}

namespace {

// Why the store refuses a decided change; nullptr when it may be written.
const char* Refusal(const MessageChange& c, const MessageMeta* current, const MessageWrite& w) {
  if (c.action == MessageChange::Action::kPurge) {
    return current && current->tombstone() ? nullptr : "purge of a live record";
  }
  if (c.meta.id() != w.id.ToBytes() || c.meta.version() > kRecordVersion) {
    return "another message's record";
  }
  if (current && VersionOf(c.meta) <= VersionOf(*current)) return "not later than the record held";
  if (!c.meta.tombstone() && !current && !c.body) return "a live record without its body";
  return nullptr;
}

}  // namespace

Status Store::Impl::AddMessageWrite(
    const MessageWrite& w, rocksdb::WriteBatch& wb,
    std::unordered_map<std::string, std::optional<MessageMeta>>& written) {
  MessageOutcome out;
  auto refuse = [&] {
    out.refused = true;
    message_writes_refused.fetch_add(1, std::memory_order_relaxed);
    if (w.outcome) *w.outcome = std::move(out);
    return Status::Ok();
  };
  std::optional<MessageMeta> current;
  if (auto it = written.find(w.key); it != written.end()) {
    current = it->second;
  } else {
    Result<std::optional<std::string>> value = Get(keys::Cf::kMsg, w.key);
    if (!value.ok()) return value.status();
    if (value->has_value()) {
      Result<MessageMeta> meta = DecodeMessageAt(w.key, **value);
      if (!meta.ok()) return refuse();  // a damaged record is left for a repair
      current = std::move(*meta);
    }
  }
  if (w.outcome) out.after = current;
  MessageChange change = w.decide(current ? &*current : nullptr);
  if (change.meta.version() == 0) change.meta.set_version(kRecordVersion);
  if (change.log && change.log->version() == 0) change.log->set_version(kRecordVersion);
  Result<std::string> log_key = change.log ? LogKeyOf(w.bucket, *change.log) : std::string();
  if (change.action != MessageChange::Action::kKeep &&
      (!log_key.ok() || Refusal(change, current ? &*current : nullptr, w))) {
    return refuse();
  }
  if (change.action == MessageChange::Action::kPurge) {
    wb.Delete(cf(keys::Cf::kMsg), w.key).PermitUncheckedError();
    written[w.key] = std::nullopt;
    out.after.reset();
  } else if (change.action == MessageChange::Action::kPut) {
    AddBodyWrite(w.id, change, current ? &*current : nullptr, wb);
    wb.Put(cf(keys::Cf::kMsg), w.key, change.meta.SerializeAsString()).PermitUncheckedError();
    if (change.log) {
      wb.Put(cf(keys::Cf::kReplog), *log_key, change.log->SerializeAsString())
          .PermitUncheckedError();
    }
    if (w.outcome) out.after = change.meta;
    written[w.key] = std::move(change.meta);
  }
  out.applied = change.action != MessageChange::Action::kKeep;
  if (w.outcome) *w.outcome = std::move(out);
  return Status::Ok();
}

Status Store::Impl::AddProfileMerge(const ProfileMerge& m, rocksdb::WriteBatch& wb,
                                    std::unordered_map<std::string, Profile>& merged) {
  Profile next = m.profile;
  if (auto it = merged.find(m.key); it != merged.end()) {
    next = MergeProfiles(it->second, m.profile);
  } else {
    Result<std::optional<std::string>> value = Get(keys::Cf::kProfile, m.key);
    if (!value.ok()) return value.status();
    if (value->has_value()) {
      Result<Profile> held = DecodeProfileAt(m.key, **value);
      // A damaged copy is replaced (every node holds every profile).
      if (held.ok()) next = MergeProfiles(*held, m.profile);
    }
  }
  next.set_version(kRecordVersion);
  wb.Put(cf(keys::Cf::kProfile), m.key, next.SerializeAsString()).PermitUncheckedError();
  merged[m.key] = std::move(next);
  return Status::Ok();
}

void Store::Impl::AddBodyWrite(const MessageId& id, const MessageChange& change,
                               const MessageMeta* current, rocksdb::WriteBatch& wb) {
  const std::string key = keys::BodyKey(id);
  if (change.meta.tombstone()) {
    wb.Delete(cf(keys::Cf::kBody), key).PermitUncheckedError();
    return;
  }
  if (!change.body) return;
  // A new record gets its body. A live record already has one, unless it is
  // damaged (written before the store kept this rule): a replica's push
  // then brings it back. KeyMayExist answers from memory and filters; a
  // false "maybe" only leaves the damage for a later push.
  std::string ignored;
  if (!current || (!current->tombstone() &&
                   !db->KeyMayExist(rocksdb::ReadOptions(), cf(keys::Cf::kBody), key, &ignored))) {
    wb.Put(cf(keys::Cf::kBody), key, *change.body).PermitUncheckedError();
  }
}

Result<std::optional<std::string>> Store::Impl::Get(keys::Cf c, const std::string& key) {
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf(c), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

Store::Store() : impl_(std::make_unique<Impl>()) {}
Store::~Store() { Close(); }

Result<std::unique_ptr<Store>> Store::Open(const Options& options, const NodeMeta& init) {
  if (options.data_dir.empty()) return Status::InvalidArgument("store: data_dir is empty");
  std::unique_ptr<Store> store(new Store());
  Impl& impl = *store->impl_;
  impl.options = options;
  impl.cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  impl.version_base = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  impl.version_base |= uint64_t{1} << 63;  // never 0, which means "no version"
  PORCUPINE_RETURN_IF_ERROR(impl.OpenDb());
  PORCUPINE_RETURN_IF_ERROR(impl.LoadOrInitMeta(init));
  GroupCommitter::Limits limits{options.max_group_batches, options.max_group_bytes};
  impl.committer = std::make_unique<GroupCommitter>(
      limits, [&impl](const std::vector<const WriteOps*>& g) { return impl.WriteGroup(g); });
  return store;
}

const NodeMeta& Store::node_meta() const { return impl_->meta; }

uint64_t Store::MessagesVersion(const std::string& user) const {
  return impl_->version_base +
         impl_->versions[MessagesVersionSlot(user)].load(std::memory_order_acquire);
}

static_assert(Store::kVersionSlots == kMessagesVersionSlots);

uint32_t Store::VersionSlotOf(const std::string& user) { return MessagesVersionSlot(user); }

uint64_t Store::SlotVersion(uint32_t slot) const {
  return impl_->version_base + impl_->versions[slot].load(std::memory_order_acquire);
}

uint64_t Store::VersionsGeneration() const { return impl_->versions_changed.generation(); }

ChangeSignal& Store::VersionsChanged() { return impl_->versions_changed; }

void Store::Submit(Batch batch, std::function<void(Status)> done) {
  impl_->committer->Submit(batch.TakeOps(), std::move(done));
}

Status Store::Commit(Batch batch) {
  if (impl_->committer->OnCommitterThread()) {
    return Status::Internal("store: Commit called from a commit callback");
  }
  // Shared so the promise outlives a callback that is still returning.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> result = promise->get_future();
  Submit(std::move(batch), [promise](Status s) { promise->set_value(std::move(s)); });
  return result.get();
}

Result<std::vector<MessageMeta>> Store::ListMessages(Bucket bucket, const std::string& user,
                                                     uint32_t folder, bool include_tombstones) {
  PORCUPINE_RETURN_IF_ERROR(keys::CheckUser(user));
  std::vector<MessageMeta> out;
  PORCUPINE_RETURN_IF_ERROR(ForEachWithPrefix(
      *impl_->db, impl_->cf(keys::Cf::kMsg), nullptr, keys::FolderPrefix(bucket, user, folder),
      [&](std::string_view key, std::string_view value) -> Status {
        Result<MessageMeta> meta = DecodeMessageAt(key, value);
        if (!meta.ok()) return meta.status();
        if (include_tombstones || !meta->tombstone()) out.push_back(std::move(*meta));
        return Status::Ok();
      }));
  return out;
}

Result<bool> Store::HasLiveMessages(Bucket bucket, const std::string& user) {
  PORCUPINE_RETURN_IF_ERROR(keys::CheckUser(user));
  bool live = false;
  PORCUPINE_RETURN_IF_ERROR(ForEachWithPrefix(
      *impl_->db, impl_->cf(keys::Cf::kMsg), nullptr, keys::UserPrefix(bucket, user),
      [&](std::string_view key, std::string_view value) -> Status {
        if (live) return Status::Ok();  // (no early stop in ForEachWithPrefix)
        Result<MessageMeta> meta = DecodeMessageAt(key, value);
        if (!meta.ok()) return meta.status();
        live = !meta->tombstone();
        return Status::Ok();
      }));
  return live;
}

Result<std::optional<MessageMeta>> Store::GetMessage(Bucket bucket, const std::string& user,
                                                     uint32_t folder, const MessageId& id) {
  PORCUPINE_RETURN_IF_ERROR(keys::CheckUser(user));
  const std::string key = keys::MessageKey(bucket, user, folder, id);
  Result<std::optional<std::string>> value = impl_->Get(keys::Cf::kMsg, key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<MessageMeta>();
  Result<MessageMeta> meta = DecodeMessageAt(key, **value);
  if (!meta.ok()) return meta.status();
  return std::optional<MessageMeta>(std::move(*meta));
}

Result<std::string> Store::ReadBody(const MessageId& id) {
  Result<std::optional<std::string>> value = impl_->Get(keys::Cf::kBody, keys::BodyKey(id));
  if (!value.ok()) return value.status();
  if (!value->has_value()) return Status::NotFound("store: no body for message " + id.ToHex());
  return std::move(**value);
}

Result<std::optional<Profile>> Store::GetProfile(Bucket bucket, const std::string& user) {
  PORCUPINE_RETURN_IF_ERROR(keys::CheckUser(user));
  const std::string key = keys::UserPrefix(bucket, user);
  Result<std::optional<std::string>> value = impl_->Get(keys::Cf::kProfile, key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::optional<Profile>();
  Result<Profile> profile = DecodeProfileAt(key, **value);
  if (!profile.ok()) return profile.status();
  return std::optional<Profile>(std::move(*profile));
}

Status Store::ScanUsers(Bucket first, Bucket last,
                        const std::function<void(Bucket, const std::string&)>& fn) {
  if (first > last) return Status::Ok();
  return ScanUsersIn(*impl_->db, impl_->cf(keys::Cf::kMsg), impl_->cf(keys::Cf::kProfile), first,
                     last, fn);
}

Status Store::ScanProfiles(const std::function<void(Bucket, const Profile&)>& fn) {
  return ForEachWithPrefix(*impl_->db, impl_->cf(keys::Cf::kProfile), nullptr, "",
                           [&](std::string_view key, std::string_view value) -> Status {
                             Result<Profile> p = DecodeProfileAt(key, value);
                             if (!p.ok()) return p.status();
                             fn(keys::ParseUserKey(key)->bucket, *p);
                             return Status::Ok();
                           });
}

Status Store::ScanForRebuild(
    const std::vector<Bucket>& buckets,
    const std::function<void(Bucket, const std::string&, bool, const Profile*)>& fn) {
  return ScanBucketsIn(*impl_->db, impl_->cf(keys::Cf::kMsg), impl_->cf(keys::Cf::kProfile),
                       buckets, fn);
}

Status Store::ScanMessages(
    Bucket first, Bucket last,
    const std::function<void(Bucket, const std::string&, const MessageMeta&)>& fn) {
  if (first > last) return Status::Ok();
  rocksdb::ManagedSnapshot snapshot(impl_->db.get());
  for (uint32_t b = first; b <= last; ++b) {
    PORCUPINE_RETURN_IF_ERROR(ForEachWithPrefix(
        *impl_->db, impl_->cf(keys::Cf::kMsg), snapshot.snapshot(),
        keys::BucketPrefix(static_cast<Bucket>(b)),
        [&](std::string_view key, std::string_view value) -> Status {
          Result<MessageMeta> m = DecodeMessageAt(key, value);
          if (!m.ok()) return m.status();
          fn(static_cast<Bucket>(b), std::string(keys::ParseUserKey(key)->user), *m);
          return Status::Ok();
        }));
  }
  return Status::Ok();
}

Status Store::ScanBucketProfiles(Bucket first, Bucket last,
                                 const std::function<void(Bucket, const Profile&)>& fn) {
  if (first > last) return Status::Ok();
  rocksdb::ManagedSnapshot snapshot(impl_->db.get());
  for (uint32_t b = first; b <= last; ++b) {
    PORCUPINE_RETURN_IF_ERROR(
        ForEachWithPrefix(*impl_->db, impl_->cf(keys::Cf::kProfile), snapshot.snapshot(),
                          keys::BucketPrefix(static_cast<Bucket>(b)),
                          [&](std::string_view key, std::string_view value) -> Status {
                            Result<Profile> p = DecodeProfileAt(key, value);
                            if (!p.ok()) return p.status();
                            fn(static_cast<Bucket>(b), *p);
                            return Status::Ok();
                          }));
  }
  return Status::Ok();
}

Status Store::ScanLog(const std::function<void(const LogRecord&)>& fn) {
  return ForEachWithPrefix(*impl_->db, impl_->cf(keys::Cf::kReplog), nullptr, "",
                           [&](std::string_view, std::string_view value) -> Status {
                             Result<LogRecord> r = DecodeLogRecord(value);
                             if (!r.ok()) return r.status();
                             fn(*r);
                             return Status::Ok();
                           });
}

Status Store::PutMeta(const std::string& name, const std::string& value) {
  if (name.empty() || name == keys::kNodeMetaKey) {
    return Status::InvalidArgument("store: reserved or empty meta name");
  }
  rocksdb::WriteOptions wo;
  wo.sync = impl_->options.sync;
  return FromRocks(impl_->db->Put(wo, impl_->cf(keys::Cf::kMeta), name, value), "write meta");
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& name) {
  return impl_->Get(keys::Cf::kMeta, name);
}

Store::Stats Store::stats() const {
  const GroupCommitter::Stats g = impl_->committer->stats();
  Stats s;
  s.syncs = impl_->options.sync ? g.groups : 0;
  s.groups = g.groups;
  s.batches = g.batches;
  s.bytes = g.bytes;
  s.failed = g.failed;
  s.last_group = g.last_group;
  s.message_writes_refused = impl_->message_writes_refused.load(std::memory_order_relaxed);
  s.group_sizes = g.group_sizes;
  return s;
}

size_t Store::pending() const { return impl_->committer->pending(); }

void Store::Close() {
  if (impl_ && impl_->committer) impl_->committer->Close();
}

}  // namespace porcupine::store
