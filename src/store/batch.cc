// Batch: records key-level writes (write_ops.h); Store::Submit hands them to
// the group committer.
#include <utility>

#include "core/hash.h"
#include "store/keys.h"
#include "store/profile_merge.h"
#include "store/records.h"
#include "store/store.h"
#include "store/write_ops.h"

namespace porcupine::store {

struct Batch::Rep {
  WriteOps w;

  // False (and the error remembered) when `s` is an error.
  bool Check(const Status& s) {
    if (s.ok()) return true;
    if (w.error.ok()) w.error = s;
    return false;
  }
  void Put(keys::Cf cf, std::string key, std::string value) {
    w.bytes += key.size() + value.size();
    w.ops.push_back({cf, false, std::move(key), std::move(value), nullptr, nullptr});
  }
  void Delete(keys::Cf cf, std::string key) {
    w.bytes += key.size();
    w.ops.push_back({cf, true, std::move(key), {}, nullptr, nullptr});
  }
  void Touch(const std::string& user) {
    const uint32_t slot = MessagesVersionSlot(user);
    if (w.touched.empty() || w.touched.back() != slot) w.touched.push_back(slot);
  }
};

uint32_t MessagesVersionSlot(const std::string& user) {
  return static_cast<uint32_t>(Hash64(user) % kMessagesVersionSlots);
}

namespace {

// Stamps version 0 as the current one; InvalidArgument for any other.
template <typename Record>
Status StampVersion(Record& r) {
  if (r.version() == 0) r.set_version(kRecordVersion);
  if (r.version() != kRecordVersion) {
    return Status::InvalidArgument("store: cannot write record version " +
                                   std::to_string(r.version()));
  }
  return Status::Ok();
}

Result<MessageId> IdOf(const MessageMeta& meta) {
  std::optional<MessageId> id = MessageId::FromBytes(meta.id());
  if (!id) return Status::InvalidArgument("store: message id must be 16 bytes");
  return *id;
}

}  // namespace

// rep_ is null in a moved-from Batch until it is written to again.
Batch::Batch() : rep_(std::make_unique<Rep>()) {}
Batch::~Batch() = default;
Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;

Batch::Rep& Batch::rep() {
  if (!rep_) rep_ = std::make_unique<Rep>();
  return *rep_;
}

void Batch::UpdateMessage(Bucket bucket, const std::string& user, uint32_t folder,
                          const MessageId& id, MessageDecision decide, MessageOutcome* outcome) {
  if (!rep().Check(keys::CheckUser(user))) return;
  auto w = std::make_shared<MessageWrite>();
  w->bucket = bucket;
  w->user = user;
  w->key = keys::MessageKey(bucket, user, folder, id);
  w->id = id;
  w->decide = std::move(decide);
  w->outcome = outcome;
  rep().w.bytes += w->key.size();
  rep().w.ops.push_back({keys::Cf::kMsg, false, {}, {}, std::move(w), nullptr});
  rep().Touch(user);
}

void Batch::PutMessage(Bucket bucket, const std::string& user, const MessageMeta& meta,
                       const std::string* body, MessageOutcome* outcome) {
  PutMessage(bucket, user, meta, body ? std::make_shared<const std::string>(*body) : nullptr,
             outcome);
}

void Batch::PutMessage(Bucket bucket, const std::string& user, const MessageMeta& meta,
                       std::shared_ptr<const std::string> body, MessageOutcome* outcome) {
  if (meta.tombstone()) {
    rep().Check(Status::InvalidArgument("store: PutMessage of a tombstone"));
    return;
  }
  Result<MessageId> id = IdOf(meta);
  if (!rep().Check(id.status())) return;
  MessageChange change;
  change.action = MessageChange::Action::kPut;
  change.meta = meta;
  if (!rep().Check(StampVersion(change.meta))) return;
  rep().w.bytes += meta.ByteSizeLong() + (body ? body->size() : 0);
  change.body = std::move(body);
  // Decided once: the change moves out.
  auto put = [change = std::move(change)](const MessageMeta*) mutable { return std::move(change); };
  UpdateMessage(bucket, user, meta.folder(), *id, std::move(put), outcome);
}

void Batch::DeleteMessage(Bucket bucket, const std::string& user, const MessageMeta& tombstone,
                          MessageOutcome* outcome) {
  Result<MessageId> id = IdOf(tombstone);
  if (!rep().Check(id.status())) return;
  MessageChange change;
  change.action = MessageChange::Action::kPut;
  change.meta = tombstone;
  change.meta.set_tombstone(true);
  if (!rep().Check(StampVersion(change.meta))) return;
  rep().w.bytes += change.meta.ByteSizeLong();
  auto put = [change = std::move(change)](const MessageMeta*) mutable { return std::move(change); };
  UpdateMessage(bucket, user, tombstone.folder(), *id, std::move(put), outcome);
}

void Batch::PurgeMessage(Bucket bucket, const std::string& user, uint32_t folder,
                         const MessageId& id) {
  auto purge = [](const MessageMeta*) {
    return MessageChange{MessageChange::Action::kPurge, {}, nullptr, std::nullopt};
  };
  UpdateMessage(bucket, user, folder, id, std::move(purge), nullptr);
}

void Batch::PutProfile(Bucket bucket, const Profile& profile) {
  if (!rep().Check(keys::CheckUser(profile.user()))) return;
  Profile p = profile;
  if (!rep().Check(StampVersion(p))) return;
  rep().Put(keys::Cf::kProfile, keys::UserPrefix(bucket, p.user()), p.SerializeAsString());
}

void Batch::MergeProfile(Bucket bucket, const Profile& profile) {
  if (!rep().Check(keys::CheckUser(profile.user()))) return;
  auto m = std::make_shared<ProfileMerge>();
  m->profile = profile;
  if (!rep().Check(StampVersion(m->profile))) return;
  m->key = keys::UserPrefix(bucket, profile.user());
  rep().w.bytes += m->key.size() + profile.ByteSizeLong();
  rep().w.ops.push_back({keys::Cf::kProfile, false, {}, {}, nullptr, std::move(m)});
}

void Batch::DeleteProfile(Bucket bucket, const std::string& user) {
  if (!rep().Check(keys::CheckUser(user))) return;
  rep().Delete(keys::Cf::kProfile, keys::UserPrefix(bucket, user));
}

Result<std::string> LogKeyOf(Bucket bucket, const LogRecord& r) {
  PORCUPINE_RETURN_IF_ERROR(keys::CheckUser(r.user()));
  if (r.kind() == kLogKindProfile)
    return keys::LogKey(kLogKindProfile, bucket, r.user(), 0, nullptr);
  if (r.kind() != kLogKindMessage) {
    return Status::InvalidArgument("store: unknown log record kind " + std::to_string(r.kind()));
  }
  std::optional<MessageId> id = MessageId::FromBytes(r.id());
  if (!id) return Status::InvalidArgument("store: message id must be 16 bytes");
  return keys::LogKey(kLogKindMessage, bucket, r.user(), r.folder(), &*id);
}

void Batch::PutLog(Bucket bucket, const LogRecord& record) {
  Result<std::string> key = LogKeyOf(bucket, record);
  if (!rep().Check(key.status())) return;
  LogRecord r = record;
  if (!rep().Check(StampVersion(r))) return;
  rep().Put(keys::Cf::kReplog, std::move(*key), r.SerializeAsString());
}

void Batch::DeleteLog(Bucket bucket, const LogRecord& record) {
  Result<std::string> key = LogKeyOf(bucket, record);
  if (!rep().Check(key.status())) return;
  rep().Delete(keys::Cf::kReplog, std::move(*key));
}

WriteOps Batch::TakeOps() {
  WriteOps out = rep_ ? std::move(rep_->w) : WriteOps{};
  rep_.reset();
  return out;
}

bool Batch::empty() const { return !rep_ || rep_->w.ops.empty(); }
size_t Batch::ByteSize() const { return rep_ ? rep_->w.bytes : 0; }
Status Batch::status() const { return rep_ ? rep_->w.error : Status::Ok(); }

}  // namespace porcupine::store
