#include "rpc/convert.h"

#include <algorithm>
#include <optional>
#include <string>

#include "store/message_id.h"
#include "store/store.h"

namespace porcupine::rpc {
namespace {

void ToProto(const cluster::Member& m, MemberP* out) {
  out->set_id(m.id);
  out->set_incarnation(m.incarnation);
  out->set_address(m.address);
  out->set_name(m.name);
}

cluster::Member FromProto(const MemberP& p) {
  return {p.id(), p.incarnation(), p.address(), p.name()};
}

}  // namespace

void ToProto(const cluster::View& v, ViewP* out) {
  out->set_epoch(v.epoch);
  out->set_base_epoch(v.base_epoch);
  for (const cluster::Member& m : v.members) ToProto(m, out->add_members());
  UserMapP* map = out->mutable_user_map();
  for (uint32_t b = 0; b < v.user_map.buckets(); ++b) {
    map->add_managers(v.user_map.ManagerOf(b));
    map->add_epochs(v.user_map.EpochOf(b));
  }
  for (cluster::NodeId id : v.removed) out->add_removed(id);
  for (cluster::NodeId id : v.joined) out->add_joined(id);
}

Result<cluster::View> FromProto(const ViewP& p, uint32_t buckets) {
  cluster::View v;
  v.epoch = p.epoch();
  v.base_epoch = p.base_epoch();
  for (const MemberP& m : p.members()) {
    if (m.id() == 0 || m.address().empty()) return Status::InvalidArgument("view: bad member");
    if (!v.members.empty() && v.members.back().id >= m.id()) {
      return Status::InvalidArgument("view: members not sorted");
    }
    v.members.push_back(FromProto(m));
  }
  v.user_map = cluster::UserMap(buckets, 0);
  if (v.epoch != 0) {
    const UserMapP& map = p.user_map();
    if (static_cast<uint32_t>(map.managers_size()) != buckets ||
        static_cast<uint32_t>(map.epochs_size()) != buckets) {
      return Status::InvalidArgument("view: user map has the wrong bucket count");
    }
    for (uint32_t b = 0; b < buckets; ++b) {
      if (!v.Contains(map.managers(static_cast<int>(b)))) {
        return Status::InvalidArgument("view: a bucket's manager is not a member");
      }
      v.user_map.Set(b, map.managers(static_cast<int>(b)), map.epochs(static_cast<int>(b)));
    }
  }
  v.removed.insert(p.removed().begin(), p.removed().end());
  v.joined.assign(p.joined().begin(), p.joined().end());
  std::sort(v.joined.begin(), v.joined.end());
  return v;
}

void ToProto(const cluster::Message& m, MembershipMessage* out) {
  ToProto(m.from, out->mutable_from());
  out->set_view_epoch(m.view_epoch);
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, cluster::Ping>) out->mutable_ping();
        if constexpr (std::is_same_v<T, cluster::PingAck>) out->mutable_ping_ack();
        if constexpr (std::is_same_v<T, cluster::Probe>) out->mutable_probe();
        if constexpr (std::is_same_v<T, cluster::ProbeAck>) out->mutable_probe_ack();
        if constexpr (std::is_same_v<T, cluster::Propose>) out->set_propose(b.proposal);
        if constexpr (std::is_same_v<T, cluster::Accept>) {
          out->mutable_accept()->set_proposal(b.proposal);
          ToProto(b.view, out->mutable_accept()->mutable_view());
        }
        if constexpr (std::is_same_v<T, cluster::Reject>) {
          RejectP* r = out->mutable_reject();
          r->set_proposal(b.proposal);
          r->set_seen(b.seen);
          r->set_in_round(b.in_round);
        }
        if constexpr (std::is_same_v<T, cluster::Commit>) ToProto(b.view, out->mutable_commit());
        if constexpr (std::is_same_v<T, cluster::Removed>) out->mutable_removed();
      },
      m.body);
}

Result<cluster::Message> FromProto(const MembershipMessage& p, uint32_t buckets) {
  cluster::Message m;
  m.from = FromProto(p.from());
  if (m.from.id == 0 || m.from.address.empty()) {
    return Status::InvalidArgument("membership: no sender");
  }
  m.view_epoch = p.view_epoch();
  switch (p.body_case()) {
    case MembershipMessage::kPing:
      m.body = cluster::Ping{};
      break;
    case MembershipMessage::kPingAck:
      m.body = cluster::PingAck{};
      break;
    case MembershipMessage::kProbe:
      m.body = cluster::Probe{};
      break;
    case MembershipMessage::kProbeAck:
      m.body = cluster::ProbeAck{};
      break;
    case MembershipMessage::kPropose:
      m.body = cluster::Propose{p.propose()};
      break;
    case MembershipMessage::kAccept: {
      Result<cluster::View> v = FromProto(p.accept().view(), buckets);
      if (!v.ok()) return v.status();
      m.body = cluster::Accept{p.accept().proposal(), std::move(*v)};
      break;
    }
    case MembershipMessage::kReject:
      m.body = cluster::Reject{p.reject().proposal(), p.reject().seen(), p.reject().in_round()};
      break;
    case MembershipMessage::kCommit: {
      Result<cluster::View> v = FromProto(p.commit(), buckets);
      if (!v.ok()) return v.status();
      if (v->epoch == 0 || v->members.empty()) return Status::InvalidArgument("empty commit");
      m.body = cluster::Commit{std::move(*v)};
      break;
    }
    case MembershipMessage::kRemoved:
      m.body = cluster::Removed{};
      break;
    default:
      return Status::InvalidArgument("membership: no body");
  }
  return m;
}

void ToProto(const manager::RebuildChunk& c, RebuildChunkP* out) {
  out->set_view_epoch(c.view_epoch);
  out->set_seq(c.seq);
  out->set_total(c.total);
  for (const manager::BucketAnnouncement& ba : c.buckets) {
    BucketAnnouncementP* b = out->add_buckets();
    b->set_bucket(ba.bucket);
    b->set_entry_epoch(ba.entry_epoch);
    b->set_stamp(ba.stamp);
    for (const manager::Announcement& a : ba.users) {
      AnnouncementP* u = b->add_users();
      u->set_user(a.user);
      u->set_has_fragment(a.has_fragment);
      if (a.profile) *u->mutable_profile() = *a.profile;
    }
  }
}

Result<manager::RebuildChunk> FromProto(const RebuildChunkP& p, uint32_t buckets) {
  manager::RebuildChunk c;
  c.view_epoch = p.view_epoch();
  c.seq = p.seq();
  c.total = p.total();
  if (c.total == 0 || c.seq >= c.total) return Status::InvalidArgument("rebuild: bad seq/total");
  for (const BucketAnnouncementP& b : p.buckets()) {
    if (b.bucket() >= buckets) return Status::InvalidArgument("rebuild: bucket out of range");
    manager::BucketAnnouncement ba{b.bucket(), b.entry_epoch(), b.stamp(), {}};
    for (const AnnouncementP& u : b.users()) {
      if (u.user().empty()) return Status::InvalidArgument("rebuild: empty user");
      manager::Announcement a{u.user(), u.has_fragment(), std::nullopt};
      if (u.has_profile()) {
        if (u.profile().user() != u.user()) return Status::InvalidArgument("rebuild: profile");
        a.profile = u.profile();
      }
      ba.users.push_back(std::move(a));
    }
    c.buckets.push_back(std::move(ba));
  }
  return c;
}

void ToProto(const replication::Item& i, ObjectP* out) {
  out->set_kind(static_cast<uint32_t>(i.object.kind));
  out->set_user(i.object.user);
  out->set_folder(i.object.folder);
  out->set_id(i.object.id);
  out->set_hlc(i.hlc);
}

replication::Item FromProto(const ObjectP& p) {
  replication::Item i;
  i.object.kind = p.kind() == 2 ? replication::ObjectRef::Kind::kProfile
                                : replication::ObjectRef::Kind::kMessage;
  i.object.user = p.user();
  i.object.folder = p.folder();
  i.object.id = p.id();
  i.hlc = p.hlc();
  return i;
}

Result<std::vector<mail::NewMessage>> FromProto(const StoreRequest& p) {
  std::vector<mail::NewMessage> messages;
  for (const NewMessageP& m : p.messages()) {
    if (m.user().empty() || !store::MessageId::FromBytes(m.meta().id()) ||
        m.meta().size() != p.body().size()) {
      return Status::InvalidArgument("malformed message");
    }
    messages.push_back(
        {m.user(), m.meta(), m.in_map(), {m.mail_map().begin(), m.mail_map().end()}});
  }
  return messages;
}

Result<std::vector<store::MessageId>> FromProto(const DeleteRequest& p) {
  std::vector<store::MessageId> ids;
  for (const std::string& raw : p.ids()) {
    std::optional<store::MessageId> id = store::MessageId::FromBytes(raw);
    if (!id) return Status::InvalidArgument("bad message id");
    ids.push_back(*id);
  }
  return ids;
}

Result<std::vector<mail::FlagChange>> FromProto(const FlagsRequest& p) {
  std::vector<mail::FlagChange> changes;
  for (const FlagsRequest::Change& c : p.changes()) {
    std::optional<store::MessageId> id = store::MessageId::FromBytes(c.id());
    if (!id) return Status::InvalidArgument("bad message id");
    if (c.mode() > static_cast<uint32_t>(mail::FlagChange::Mode::kTombstone)) {
      return Status::InvalidArgument("bad flag change mode");
    }
    changes.push_back({*id,
                       static_cast<mail::FlagChange::Mode>(c.mode()),
                       {c.flags().begin(), c.flags().end()},
                       c.from_uid(),
                       c.to_uid()});
  }
  return changes;
}

Result<std::vector<mail::SlotVersion>> FromProto(const WatchRequest& p) {
  if (p.slots_size() != p.versions_size() ||
      p.slots_size() > static_cast<int>(store::Store::kVersionSlots)) {
    return Status::InvalidArgument("bad version watch");
  }
  std::vector<mail::SlotVersion> slots;
  for (int i = 0; i < p.slots_size(); ++i) slots.push_back({p.slots(i), p.versions(i)});
  return slots;
}

manager::FolderOp FromProto(const FolderRequest& p) {
  using Kind = manager::FolderOp::Kind;
  manager::FolderOp op;
  switch (p.kind()) {
    case FolderRequest::CREATE:
      op.kind = Kind::kCreate;
      break;
    case FolderRequest::DELETE:
      op.kind = Kind::kDelete;
      break;
    case FolderRequest::RENAME:
      op.kind = Kind::kRename;
      break;
    case FolderRequest::SUBSCRIBE:
      op.kind = Kind::kSubscribe;
      break;
    case FolderRequest::UNSUBSCRIBE:
      op.kind = Kind::kUnsubscribe;
      break;
    case FolderRequest::ALLOCATE_UIDS:
      op.kind = Kind::kAllocateUids;
      break;
    case FolderRequest::CLAIM_RECENT:
      op.kind = Kind::kClaimRecent;
      break;
    case FolderRequest::RELEASE_UIDS:
      op.kind = Kind::kReleaseUids;
      break;
    default:
      op.kind = Kind::kRead;
      break;
  }
  op.name = p.name();
  op.to = p.to();
  op.special_use = p.special_use();
  op.count = p.count();
  op.min_uid = p.min_uid();
  op.below = p.below();
  op.folder_id = p.folder_id();
  for (const UidRange& r : p.uids()) op.uids.push_back({r.first(), r.count()});
  return op;
}

manager::UserOpKind FromProto(UserOp::Kind kind) {
  if (kind == UserOp::SET_PASSWORD) return manager::UserOpKind::kSetPassword;
  if (kind == UserOp::DELETE) return manager::UserOpKind::kDelete;
  return manager::UserOpKind::kCreate;
}

Status Validate(const ReplicaUpdate& p) {
  if (p.user().empty()) return Status::InvalidArgument("no user");
  if (p.kind() == static_cast<uint32_t>(replication::ObjectRef::Kind::kMessage)) {
    if (!p.meta().tombstone() && p.meta().size() != p.body().size()) {
      return Status::InvalidArgument("body size disagrees with the metadata");
    }
    return Status::Ok();
  }
  if (p.kind() == static_cast<uint32_t>(replication::ObjectRef::Kind::kProfile)) {
    if (p.profile().user() != p.user()) return Status::InvalidArgument("profile of another user");
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown object kind");
}

std::vector<std::pair<replication::ObjectRef, uint64_t>> FromProto(const RetireRequest& p) {
  std::vector<std::pair<replication::ObjectRef, uint64_t>> objects;
  for (const ObjectP& o : p.objects()) {
    replication::Item i = FromProto(o);
    objects.emplace_back(std::move(i.object), i.hlc);
  }
  return objects;
}

void SetStatus(const Status& s, ReplyHeader* h) {
  h->set_code(static_cast<int32_t>(s.code()));
  if (!s.ok()) h->set_message(s.message());
}

Status StatusOf(const ReplyHeader& h) {
  if (h.code() == 0) return Status::Ok();
  if (h.code() < 0 || h.code() > static_cast<int32_t>(kLastCode)) {
    return Status::Internal("peer sent unknown status " + std::to_string(h.code()));
  }
  return Status(static_cast<Code>(h.code()), h.message());
}

}  // namespace porcupine::rpc
