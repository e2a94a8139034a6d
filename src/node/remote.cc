#include "node/remote.h"

#include "rpc/convert.h"

namespace porcupine::node {

RemotePeer::RemotePeer(ClusterRuntime& runtime, NodeId id, std::string address)
    : runtime_(runtime), id_(id), address_(std::move(address)) {}

void RemotePeer::SetAddress(const std::string& address) {
  std::lock_guard lock(mu_);
  address_ = address;
}

std::string RemotePeer::address() const {
  std::lock_guard lock(mu_);
  return address_;
}

template <typename Req, typename Rep>
asio::awaitable<Result<Rep>> RemotePeer::Call(Req req, rpc::AsyncMethod<Req, Rep> method,
                                              uint64_t entry_epoch) {
  *req.mutable_header() = runtime_.Header(entry_epoch);
  Result<Rep> r = co_await runtime_.client().Call(address(), runtime_.rpc_timeout().count(),
                                                  std::move(req), method);
  if (!r.ok()) {
    const Code c = r.status().code();
    if (c == Code::kUnavailable || c == Code::kUnknownOutcome) runtime_.Unreachable(id_);
    co_return r.status();
  }
  runtime_.ObserveLoad(id_, r->header().load());
  Status st = rpc::StatusOf(r->header());
  if (!st.ok()) co_return st;
  co_return r;
}

asio::awaitable<Result<manager::UserInfo>> RemotePeer::LookupUser(std::string user,
                                                                  uint64_t entry_epoch,
                                                                  bool with_credentials) {
  rpc::LookupRequest req;
  req.set_user(user);
  req.set_with_credentials(with_credentials);
  Result<rpc::LookupReply> r =
      co_await Call(std::move(req), &rpc::AsyncStub::LookupUser, entry_epoch);
  if (!r.ok()) co_return r.status();
  manager::UserInfo info{std::move(user),
                         {r->mail_map().begin(), r->mail_map().end()},
                         r->password_hash(),
                         r->scram_sha256()};
  co_return info;
}

asio::awaitable<Status> RemotePeer::UpdateMailMap(std::string user, NodeId node, bool add,
                                                  uint64_t stamp, uint64_t entry_epoch) {
  rpc::MailMapUpdate req;
  req.set_user(std::move(user));
  req.set_node(node);
  req.set_add(add);
  req.set_stamp(stamp);
  co_return (co_await Call(std::move(req), &rpc::AsyncStub::UpdateMailMap, entry_epoch)).status();
}

asio::awaitable<Status> RemotePeer::ManageUser(manager::UserOpKind kind, std::string user,
                                               manager::PasswordSecrets secrets,
                                               uint64_t entry_epoch) {
  rpc::UserOp req;
  switch (kind) {
    case manager::UserOpKind::kCreate:
      req.set_kind(rpc::UserOp::CREATE);
      break;
    case manager::UserOpKind::kSetPassword:
      req.set_kind(rpc::UserOp::SET_PASSWORD);
      break;
    case manager::UserOpKind::kDelete:
      req.set_kind(rpc::UserOp::DELETE);
      break;
  }
  req.set_user(std::move(user));
  req.set_password_hash(std::move(secrets.password_hash));
  req.set_scram_sha256(std::move(secrets.scram_sha256));
  co_return (co_await Call(std::move(req), &rpc::AsyncStub::ManageUser, entry_epoch)).status();
}

asio::awaitable<Result<std::vector<std::string>>> RemotePeer::ListUsers() {
  Result<rpc::ListUsersReply> r =
      co_await Call(rpc::ListUsersRequest{}, &rpc::AsyncStub::ListUsers);
  if (!r.ok()) co_return r.status();
  co_return std::vector<std::string>(r->users().begin(), r->users().end());
}

asio::awaitable<Status> RemotePeer::Store(std::vector<mail::NewMessage> messages,
                                          std::shared_ptr<const std::string> body,
                                          cluster::Epoch proxy_epoch) {
  rpc::StoreRequest req;
  for (mail::NewMessage& m : messages) {
    rpc::NewMessageP* p = req.add_messages();
    p->set_user(std::move(m.user));
    *p->mutable_meta() = std::move(m.meta);
    p->set_in_map(m.in_map);
    for (NodeId n : m.mail_map) p->add_mail_map(n);
  }
  req.set_body(*body);
  (void)proxy_epoch;  // the header carries the view this node chose the target in
  co_return (co_await Call(std::move(req), &rpc::AsyncStub::StoreMessages)).status();
}

asio::awaitable<Result<mail::Listing>> RemotePeer::List(std::string user, uint32_t folder,
                                                        uint64_t if_changed) {
  rpc::ListRequest req;
  req.set_user(std::move(user));
  req.set_folder(folder);
  req.set_if_changed(if_changed);
  Result<rpc::ListReply> r = co_await Call(std::move(req), &rpc::AsyncStub::ListFragment);
  if (!r.ok()) co_return r.status();
  mail::Listing out;
  out.messages.assign(std::make_move_iterator(r->mutable_messages()->begin()),
                      std::make_move_iterator(r->mutable_messages()->end()));
  out.version = r->version();
  out.unchanged = r->unchanged();
  co_return out;
}

asio::awaitable<Result<std::string>> RemotePeer::Fetch(std::string user, uint32_t folder,
                                                       store::MessageId id) {
  rpc::FetchRequest req;
  req.set_user(std::move(user));
  req.set_folder(folder);
  req.set_id(id.ToBytes());
  Result<rpc::FetchReply> r = co_await Call(std::move(req), &rpc::AsyncStub::FetchMessage);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_body());
}

asio::awaitable<Status> RemotePeer::Delete(std::string user, uint32_t folder,
                                           std::vector<store::MessageId> ids) {
  rpc::DeleteRequest req;
  req.set_user(std::move(user));
  req.set_folder(folder);
  for (const store::MessageId& id : ids) req.add_ids(id.ToBytes());
  co_return (co_await Call(std::move(req), &rpc::AsyncStub::DeleteMessages)).status();
}

asio::awaitable<Result<std::vector<mail::SlotVersion>>> RemotePeer::WatchVersions(
    std::vector<mail::SlotVersion> slots, std::chrono::milliseconds wait) {
  rpc::WatchRequest req;
  for (const mail::SlotVersion& s : slots) {
    req.add_slots(s.slot);
    req.add_versions(s.version);
  }
  req.set_wait_ms(static_cast<uint32_t>(wait.count()));
  Result<rpc::WatchReply> r = co_await Call(std::move(req), &rpc::AsyncStub::WatchVersions);
  if (!r.ok()) co_return r.status();
  if (r->slots_size() != r->versions_size())
    co_return Status::Corruption("bad version watch reply");
  std::vector<mail::SlotVersion> out;
  for (int i = 0; i < r->slots_size(); ++i) out.push_back({r->slots(i), r->versions(i)});
  co_return out;
}

asio::awaitable<Result<std::vector<store::MessageId>>> RemotePeer::SetFlags(
    std::string user, uint32_t folder, std::vector<mail::FlagChange> changes) {
  rpc::FlagsRequest req;
  req.set_user(std::move(user));
  req.set_folder(folder);
  for (mail::FlagChange& c : changes) {
    rpc::FlagsRequest::Change* p = req.add_changes();
    p->set_id(c.id.ToBytes());
    p->set_mode(static_cast<uint32_t>(c.mode));
    p->set_from_uid(c.from_uid);
    p->set_to_uid(c.to_uid);
    for (std::string& f : c.flags) p->add_flags(std::move(f));
  }
  Result<rpc::FlagsReply> r = co_await Call(std::move(req), &rpc::AsyncStub::SetFlags);
  if (!r.ok()) co_return r.status();
  std::vector<store::MessageId> changed;
  for (const std::string& b : r->changed()) {
    std::optional<store::MessageId> id = store::MessageId::FromBytes(b);
    if (!id) co_return Status::Corruption("bad message id in a SetFlags reply");
    changed.push_back(*id);
  }
  co_return changed;
}

asio::awaitable<Result<manager::FolderState>> RemotePeer::Folders(std::string user,
                                                                  manager::FolderOp op,
                                                                  uint64_t entry_epoch) {
  using Kind = manager::FolderOp::Kind;
  rpc::FolderRequest req;
  req.set_user(std::move(user));
  switch (op.kind) {
    case Kind::kRead:
      req.set_kind(rpc::FolderRequest::READ);
      break;
    case Kind::kCreate:
      req.set_kind(rpc::FolderRequest::CREATE);
      break;
    case Kind::kDelete:
      req.set_kind(rpc::FolderRequest::DELETE);
      break;
    case Kind::kRename:
      req.set_kind(rpc::FolderRequest::RENAME);
      break;
    case Kind::kSubscribe:
      req.set_kind(rpc::FolderRequest::SUBSCRIBE);
      break;
    case Kind::kUnsubscribe:
      req.set_kind(rpc::FolderRequest::UNSUBSCRIBE);
      break;
    case Kind::kAllocateUids:
      req.set_kind(rpc::FolderRequest::ALLOCATE_UIDS);
      break;
    case Kind::kClaimRecent:
      req.set_kind(rpc::FolderRequest::CLAIM_RECENT);
      break;
    case Kind::kReleaseUids:
      req.set_kind(rpc::FolderRequest::RELEASE_UIDS);
      break;
  }
  req.set_name(std::move(op.name));
  req.set_to(std::move(op.to));
  req.set_special_use(std::move(op.special_use));
  req.set_count(op.count);
  req.set_min_uid(op.min_uid);
  req.set_below(op.below);
  req.set_folder_id(op.folder_id);
  for (const manager::UidRange& r : op.uids) {
    rpc::UidRange* x = req.add_uids();
    x->set_first(r.first);
    x->set_count(r.count);
  }
  Result<rpc::FolderReply> r = co_await Call(std::move(req), &rpc::AsyncStub::Folders, entry_epoch);
  if (!r.ok()) co_return r.status();
  manager::FolderState st;
  for (const rpc::FolderReply::FolderStatusP& f : r->folders()) {
    manager::FolderStatus& status = st.folders.emplace_back(
        manager::FolderStatus{f.folder(), f.uidnext(), f.recent_from(), {}});
    for (const auto& r : f.in_flight()) status.in_flight.push_back({r.first(), r.count()});
  }
  st.mail_map.assign(r->mail_map().begin(), r->mail_map().end());
  st.folder_id = r->folder_id();
  st.uidvalidity = r->uidvalidity();
  st.first_uid = r->first_uid();
  co_return st;
}

asio::awaitable<Result<uint64_t>> RemotePeer::Replicate(rpc::ReplicaUpdate update) {
  Result<rpc::ReplicaAck> r = co_await Call(std::move(update), &rpc::AsyncStub::Replicate);
  if (!r.ok()) co_return r.status();
  co_return r->held_hlc();
}

asio::awaitable<Result<std::vector<uint32_t>>> RemotePeer::AntiEntropy(
    std::vector<uint64_t> digests) {
  rpc::AntiEntropyRequest req;
  for (uint64_t d : digests) req.add_digests(d);
  Result<rpc::AntiEntropyReply> r = co_await Call(std::move(req), &rpc::AsyncStub::AntiEntropy);
  if (!r.ok()) co_return r.status();
  co_return std::vector<uint32_t>(r->differing().begin(), r->differing().end());
}

asio::awaitable<Result<std::vector<replication::Item>>> RemotePeer::AntiEntropyCompare(
    uint32_t slot, std::vector<replication::Item> items) {
  rpc::AntiEntropyCompareRequest req;
  req.set_slot(slot);
  for (const replication::Item& i : items) rpc::ToProto(i, req.add_items());
  Result<rpc::AntiEntropyCompareReply> r =
      co_await Call(std::move(req), &rpc::AsyncStub::AntiEntropyCompare);
  if (!r.ok()) co_return r.status();
  std::vector<replication::Item> want;
  for (const rpc::ObjectP& o : r->want()) want.push_back(rpc::FromProto(o));
  co_return want;
}

asio::awaitable<Status> RemotePeer::Retire(rpc::RetireRequest request) {
  co_return (co_await Call(std::move(request), &rpc::AsyncStub::Retire)).status();
}

}  // namespace porcupine::node
