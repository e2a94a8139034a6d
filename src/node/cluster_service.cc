#include "node/cluster_service.h"

#include "node/anti_entropy_runtime.h"
#include "node/replication_runtime.h"
#include "rpc/convert.h"

namespace porcupine::node {

asio::awaitable<void> ClusterService::Membership(const rpc::MembershipMessage& req, rpc::Ack* rep) {
  Heard(req.header());
  Result<cluster::Message> m = rpc::FromProto(req, buckets_);
  if (m.ok()) runtime_.OnMessage(std::move(*m));
  runtime_.FillReply(m.status(), rep->mutable_header());
  co_return;
}

asio::awaitable<void> ClusterService::Gossip(const rpc::GossipRequest& req, rpc::Ack* rep) {
  Heard(req.header());
  runtime_.FillReply(Status::Ok(), rep->mutable_header());
  co_return;
}

asio::awaitable<void> ClusterService::LookupUser(const rpc::LookupRequest& req,
                                                 rpc::LookupReply* rep) {
  Heard(req.header());
  Result<manager::UserInfo> info =
      co_await manager_.LookupUser(req.user(), req.header().entry_epoch(), req.with_credentials());
  if (info.ok()) {
    for (NodeId n : info->mail_map) rep->add_mail_map(n);
    rep->set_password_hash(info->password_hash);
    rep->set_scram_sha256(info->scram_sha256);
  }
  runtime_.FillReply(info.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::UpdateMailMap(const rpc::MailMapUpdate& req, rpc::Ack* rep) {
  Heard(req.header());
  // A node reports its own fragments only.
  Status st = Status::InvalidArgument("mail-map update for another node");
  if (req.node() == req.header().from()) {
    st = co_await manager_.UpdateMailMap(req.user(), req.node(), req.add(), req.stamp(),
                                         req.header().entry_epoch());
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::ManageUser(const rpc::UserOp& req, rpc::Ack* rep) {
  Heard(req.header());
  const manager::UserOpKind kind = rpc::FromProto(req.kind());
  Status st = Status::InvalidArgument("no user");
  if (!req.user().empty()) {
    st = co_await manager_.ManageUser(kind, req.user(), {req.password_hash(), req.scram_sha256()},
                                      req.header().entry_epoch());
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::ListUsers(const rpc::ListUsersRequest& req,
                                                rpc::ListUsersReply* rep) {
  Heard(req.header());
  Result<std::vector<std::string>> users = co_await manager_.ListUsers();
  if (users.ok()) {
    for (std::string& u : *users) rep->add_users(std::move(u));
  }
  runtime_.FillReply(users.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::Rebuild(const rpc::RebuildChunkP& req, rpc::Ack* rep) {
  Heard(req.header());
  Result<manager::RebuildChunk> chunk = rpc::FromProto(req, buckets_);
  if (chunk.ok()) manager_.ApplyRebuild(req.header().from(), *chunk);
  runtime_.FillReply(chunk.status(), rep->mutable_header());
  co_return;
}

asio::awaitable<void> ClusterService::StoreMessages(const rpc::StoreRequest& req, rpc::Ack* rep) {
  Heard(req.header());
  Result<std::vector<mail::NewMessage>> messages = rpc::FromProto(req);
  Status st = messages.status();
  if (st.ok() && !messages->empty()) {
    st = co_await fragments_.Store(std::move(*messages),
                                   std::make_shared<const std::string>(req.body()),
                                   req.header().view_epoch());
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::ListFragment(const rpc::ListRequest& req,
                                                   rpc::ListReply* rep) {
  Heard(req.header());
  Result<mail::Listing> list =
      co_await fragments_.List(req.user(), rpc::FolderOf(req.folder()), req.if_changed());
  if (list.ok()) {
    for (store::MessageMeta& m : list->messages) *rep->add_messages() = std::move(m);
    rep->set_version(list->version);
    rep->set_unchanged(list->unchanged);
  }
  runtime_.FillReply(list.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::FetchMessage(const rpc::FetchRequest& req,
                                                   rpc::FetchReply* rep) {
  Heard(req.header());
  std::optional<store::MessageId> id = store::MessageId::FromBytes(req.id());
  Result<std::string> body = Status::InvalidArgument("bad message id");
  if (id) body = co_await fragments_.Fetch(req.user(), rpc::FolderOf(req.folder()), *id);
  if (body.ok()) rep->set_body(std::move(*body));
  runtime_.FillReply(body.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::DeleteMessages(const rpc::DeleteRequest& req, rpc::Ack* rep) {
  Heard(req.header());
  Result<std::vector<store::MessageId>> ids = rpc::FromProto(req);
  Status st = ids.status();
  if (st.ok()) {
    st = co_await fragments_.Delete(req.user(), rpc::FolderOf(req.folder()), std::move(*ids));
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::WatchVersions(const rpc::WatchRequest& req,
                                                    rpc::WatchReply* rep) {
  Heard(req.header());
  // The longest wait a caller gets: well inside its data-path deadline, and
  // short enough not to hold a shutdown up.
  constexpr uint32_t kMaxWaitMs = 1000;
  Result<std::vector<mail::SlotVersion>> slots = rpc::FromProto(req);
  Status st = slots.status();
  if (st.ok()) {
    Result<std::vector<mail::SlotVersion>> changed = co_await fragments_.WatchVersions(
        std::move(*slots), std::chrono::milliseconds(std::min(req.wait_ms(), kMaxWaitMs)));
    st = changed.status();
    if (changed.ok()) {
      for (const mail::SlotVersion& s : *changed) {
        rep->add_slots(s.slot);
        rep->add_versions(s.version);
      }
    }
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::SetFlags(const rpc::FlagsRequest& req, rpc::FlagsReply* rep) {
  Heard(req.header());
  Result<std::vector<mail::FlagChange>> changes = rpc::FromProto(req);
  Status st = changes.status();
  if (st.ok()) {
    Result<std::vector<store::MessageId>> changed =
        co_await fragments_.SetFlags(req.user(), rpc::FolderOf(req.folder()), std::move(*changes));
    st = changed.status();
    if (changed.ok()) {
      for (const store::MessageId& id : *changed) rep->add_changed(id.ToBytes());
    }
  }
  runtime_.FillReply(st, rep->mutable_header());
}

asio::awaitable<void> ClusterService::Folders(const rpc::FolderRequest& req,
                                              rpc::FolderReply* rep) {
  Heard(req.header());
  manager::FolderOp op = rpc::FromProto(req);
  Result<manager::FolderState> st = Status::InvalidArgument("no user");
  if (!req.user().empty()) {
    st = co_await manager_.Folders(req.user(), std::move(op), req.header().entry_epoch());
  }
  if (st.ok()) {
    for (const manager::FolderStatus& f : st->folders) {
      rpc::FolderReply::FolderStatusP* p = rep->add_folders();
      *p->mutable_folder() = f.folder;
      p->set_uidnext(f.uidnext);
      p->set_recent_from(f.recent_from);
      for (const manager::UidRange& r : f.in_flight) {
        rpc::UidRange* x = p->add_in_flight();
        x->set_first(r.first);
        x->set_count(r.count);
      }
    }
    for (NodeId n : st->mail_map) rep->add_mail_map(n);
    rep->set_folder_id(st->folder_id);
    rep->set_uidvalidity(st->uidvalidity);
    rep->set_first_uid(st->first_uid);
  }
  runtime_.FillReply(st.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::Replicate(const rpc::ReplicaUpdate& req,
                                                rpc::ReplicaAck* rep) {
  Heard(req.header());
  const Status valid = rpc::Validate(req);
  Result<uint64_t> held;
  if (!valid.ok()) {
    held = valid;
  } else if (req.kind() == static_cast<uint32_t>(replication::ObjectRef::Kind::kMessage)) {
    std::shared_ptr<const std::string> body;
    if (!req.meta().tombstone()) body = std::make_shared<const std::string>(req.body());
    held = co_await fragments_.ApplyReplica(req.user(), req.meta(), body, req.in_map(),
                                            {req.takeover().begin(), req.takeover().end()});
  } else {
    Status st = co_await profiles_.WriteLocal(req.profile());
    if (st.ok()) manager_.OfferProfile(req.profile());
    held = st.ok() ? Result<uint64_t>(req.profile().hlc()) : Result<uint64_t>(st);
  }
  if (held.ok()) rep->set_held_hlc(*held);
  runtime_.FillReply(held.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::Retire(const rpc::RetireRequest& req, rpc::Ack* rep) {
  Heard(req.header());
  if (replication_) replication_->OnRetire(rpc::FromProto(req));
  runtime_.FillReply(Status::Ok(), rep->mutable_header());
  co_return;
}

asio::awaitable<void> ClusterService::AntiEntropy(const rpc::AntiEntropyRequest& req,
                                                  rpc::AntiEntropyReply* rep) {
  Heard(req.header());
  Result<std::vector<uint32_t>> differing = Status::Unavailable("anti-entropy not running");
  if (anti_entropy_) {
    differing = co_await anti_entropy_->Differing(req.header().from(),
                                                  {req.digests().begin(), req.digests().end()});
  }
  if (differing.ok()) {
    for (uint32_t s : *differing) rep->add_differing(s);
  }
  runtime_.FillReply(differing.status(), rep->mutable_header());
}

asio::awaitable<void> ClusterService::AntiEntropyCompare(const rpc::AntiEntropyCompareRequest& req,
                                                         rpc::AntiEntropyCompareReply* rep) {
  Heard(req.header());
  std::vector<replication::Item> theirs;
  for (const rpc::ObjectP& o : req.items()) theirs.push_back(rpc::FromProto(o));
  Result<std::vector<replication::Item>> want = Status::Unavailable("anti-entropy not running");
  if (anti_entropy_) {
    want = co_await anti_entropy_->Compare(req.header().from(), req.slot(), std::move(theirs));
  }
  if (want.ok()) {
    for (const replication::Item& i : *want) rpc::ToProto(i, rep->add_want());
  }
  runtime_.FillReply(want.status(), rep->mutable_header());
}

}  // namespace porcupine::node
