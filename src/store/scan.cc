#include "store/scan.h"

#include <map>
#include <memory>
#include <optional>

#include "store/keys.h"
#include "store/records.h"
#include "store/rocks.h"

namespace porcupine::store {
namespace {

// Yields, in key order, the user prefixes (bucket · len · user) of one
// family's keys in a bucket range whose user is live there: some message not
// a tombstone (msg), or the profile not a tombstone (profile).
class UserCursor {
 public:
  UserCursor(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, const rocksdb::Snapshot* snapshot,
             keys::Cf kind, uint16_t first, uint16_t last)
      : kind_(kind), upper_(keys::PrefixSuccessor(keys::BucketPrefix(last))) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    if (upper_) {
      upper_slice_ = rocksdb::Slice(*upper_);
      ro.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db.NewIterator(ro, cf));
    it_->Seek(keys::BucketPrefix(first));
  }
  UserCursor(const UserCursor&) = delete;  // upper_slice_ points into upper_
  UserCursor& operator=(const UserCursor&) = delete;

  // The next live user's prefix, nullopt at the end.
  Result<std::optional<std::string>> Next() {
    while (it_->Valid()) {
      const std::string_view key(it_->key().data(), it_->key().size());
      const std::string_view value(it_->value().data(), it_->value().size());
      std::optional<keys::UserKey> uk = keys::ParseUserKey(key);
      if (!uk) return Status::Corruption("store: malformed user key");
      Result<bool> live = Live(key, value);
      if (!live.ok()) return live.status();
      if (!*live) {
        it_->Next();
        continue;
      }
      std::string prefix(key.substr(0, 3 + uk->user.size()));
      SkipPast(prefix);
      return std::optional<std::string>(std::move(prefix));
    }
    Status s = FromRocks(it_->status(), "scan users");
    if (!s.ok()) return s;
    return std::optional<std::string>();
  }

 private:
  Result<bool> Live(std::string_view key, std::string_view value) const {
    if (kind_ == keys::Cf::kMsg) {
      Result<MessageMeta> m = DecodeMessageAt(key, value);
      if (!m.ok()) return m.status();
      return !m->tombstone();
    }
    Result<Profile> p = DecodeProfileAt(key, value);
    if (!p.ok()) return p.status();
    return !p->tombstone();
  }

  // Moves to the first key after every key of this user.
  void SkipPast(const std::string& prefix) {
    std::optional<std::string> next = keys::PrefixSuccessor(prefix);
    if (next) {
      it_->Seek(*next);
    } else {
      it_->SeekToLast();  // nothing sorts after an all-0xff prefix's keys
      if (it_->Valid()) it_->Next();
    }
  }

  const keys::Cf kind_;
  const std::optional<std::string> upper_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

void Emit(const std::string& prefix, const std::function<void(uint16_t, const std::string&)>& fn) {
  const keys::UserKey k = *keys::ParseUserKey(prefix);
  fn(k.bucket, std::string(k.user));
}

}  // namespace

Status ForEachWithPrefix(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                         const rocksdb::Snapshot* snapshot, const std::string& prefix,
                         const std::function<Status(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  const std::optional<std::string> upper = keys::PrefixSuccessor(prefix);
  rocksdb::Slice upper_slice;
  if (upper) {
    upper_slice = rocksdb::Slice(*upper);
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(prefix)) break;
    PORCUPINE_RETURN_IF_ERROR(fn(key, std::string_view(it->value().data(), it->value().size())));
  }
  return FromRocks(it->status(), "scan");
}

Status ScanUsersIn(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* msg,
                   rocksdb::ColumnFamilyHandle* profile, uint16_t first, uint16_t last,
                   const std::function<void(uint16_t, const std::string&)>& fn) {
  rocksdb::ManagedSnapshot snapshot(&db);
  UserCursor msgs(db, msg, snapshot.snapshot(), keys::Cf::kMsg, first, last);
  UserCursor profiles(db, profile, snapshot.snapshot(), keys::Cf::kProfile, first, last);
  Result<std::optional<std::string>> a = msgs.Next();
  Result<std::optional<std::string>> b = profiles.Next();
  for (;;) {
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    if (!a->has_value() && !b->has_value()) return Status::Ok();
    // Emit the smaller prefix; equal prefixes (a user in both) once.
    const bool take_a = a->has_value() && (!b->has_value() || **a <= **b);
    const bool take_b = b->has_value() && (!a->has_value() || **b <= **a);
    Emit(take_a ? **a : **b, fn);
    if (take_a) a = msgs.Next();
    if (take_b) b = profiles.Next();
  }
}

Status ScanBucketsIn(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* msg, rocksdb::ColumnFamilyHandle* profile,
    const std::vector<uint16_t>& buckets,
    const std::function<void(uint16_t, const std::string&, bool, const Profile*)>& fn) {
  rocksdb::ManagedSnapshot snapshot(&db);
  struct Entry {
    bool live = false;
    std::optional<Profile> profile;
  };
  for (uint16_t bucket : buckets) {
    // Keyed by the user prefix, whose byte order is the key order.
    std::map<std::string, Entry> users;
    UserCursor msgs(db, msg, snapshot.snapshot(), keys::Cf::kMsg, bucket, bucket);
    for (;;) {
      Result<std::optional<std::string>> next = msgs.Next();
      if (!next.ok()) return next.status();
      if (!next->has_value()) break;
      users[**next].live = true;
    }
    PORCUPINE_RETURN_IF_ERROR(
        ForEachWithPrefix(db, profile, snapshot.snapshot(), keys::BucketPrefix(bucket),
                          [&](std::string_view key, std::string_view value) -> Status {
                            Result<Profile> p = DecodeProfileAt(key, value);
                            if (!p.ok()) return p.status();
                            users[std::string(key)].profile = std::move(*p);
                            return Status::Ok();
                          }));
    for (const auto& [prefix, e] : users) {
      const keys::UserKey k = *keys::ParseUserKey(prefix);
      fn(bucket, std::string(k.user), e.live, e.profile ? &*e.profile : nullptr);
    }
  }
  return Status::Ok();
}

}  // namespace porcupine::store
