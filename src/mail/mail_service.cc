#include "mail/mail_service.h"

#include <algorithm>
#include <map>

#include "cluster/balancer.h"
#include "core/address.h"
#include "core/hash.h"

namespace porcupine::mail {

MailService::MailService(const MailServiceOptions& options, const cluster::UserMap& user_map,
                         manager::ManagerDirectory& managers, NodeDirectory& nodes, Hlc& hlc)
    : options_(options),
      user_map_(user_map),
      managers_(managers),
      nodes_(nodes),
      hlc_(hlc),
      rng_(std::random_device{}()) {}

manager::UserManager* MailService::ManagerOf(const std::string& user) {
  return managers_.ManagerOn(user_map_.ManagerOf(BucketOf(user, user_map_.buckets())));
}

std::optional<std::string> MailService::RecipientAddress(std::string_view address) const {
  // RFC 5321 §4.5.1: a bare "postmaster" must be accepted; it is the
  // postmaster of the first local domain.
  return LoginToAddress(address, options_.domains.empty() ? "" : options_.domains.front());
}

bool MailService::IsLocalDomain(std::string_view domain) const {
  return std::find(options_.domains.begin(), options_.domains.end(), domain) !=
         options_.domains.end();
}

asio::awaitable<RecipientCheck> MailService::CheckRecipient(std::string address) {
  std::optional<std::string> user = RecipientAddress(address);
  if (!user) co_return RecipientCheck::kBadAddress;
  if (!IsLocalDomain(DomainOf(*user))) co_return RecipientCheck::kNotLocalDomain;
  manager::UserManager* m = ManagerOf(*user);
  if (!m) co_return RecipientCheck::kTempFail;
  Result<manager::UserInfo> info = co_await m->LookupUser(*user);
  if (info.ok()) co_return RecipientCheck::kLocalUser;
  co_return info.status().code() == Code::kNotFound ? RecipientCheck::kUnknownUser
                                                    : RecipientCheck::kTempFail;
}

store::MessageId MailService::NewMessageId() {
  std::lock_guard lock(mu_);
  return store::MessageId{hlc_.Now(), nodes_.self(), ++id_counter_};
}

std::vector<NodeId> MailService::ChooseNodes(const std::vector<NodeId>& mail_map) {
  cluster::BalancerInput in;
  in.mail_map = mail_map;
  in.live = nodes_.LiveNodes();
  in.spread = options_.spread;
  in.copies = options_.replication;
  in.load = [this](NodeId n) -> uint64_t {
    FragmentStore* f = nodes_.FragmentsOn(n);
    return f ? f->Load() : UINT64_MAX;
  };
  std::lock_guard lock(mu_);
  return cluster::ChooseReplicas(in, rng_);
}

asio::awaitable<Status> MailService::Deliver(std::vector<std::string> recipients,
                                             std::string message) {
  auto body = std::make_shared<const std::string>(std::move(message));
  std::map<NodeId, std::vector<NewMessage>> per_node;
  std::vector<std::pair<std::string, NodeId>> new_fragments;
  const int64_t now_ms = Hlc::PhysicalMs(hlc_.Now());
  for (const std::string& rcpt : recipients) {
    std::optional<std::string> user = RecipientAddress(rcpt);
    if (!user) co_return Status::InvalidArgument("bad recipient " + rcpt);
    manager::UserManager* m = ManagerOf(*user);
    if (!m) co_return Status::Unavailable("no manager for " + *user);
    Result<manager::UserInfo> info = co_await m->LookupUser(*user);
    if (!info.ok()) co_return info.status();
    std::vector<NodeId> chosen = ChooseNodes(info->mail_map);
    if (chosen.empty()) co_return Status::Unavailable("no live node to store mail");
    NewMessage msg{*user, {}};
    store::MessageId id = NewMessageId();
    msg.meta.set_version(1);
    msg.meta.set_id(id.ToBytes());
    msg.meta.set_folder(store::kInboxFolder);
    msg.meta.set_internal_date_ms(now_ms);
    msg.meta.set_size(body->size());
    msg.meta.set_hlc(id.hlc);
    for (NodeId n : chosen) msg.meta.add_replicas(n);
    // The first replica stores; copying to the others is the replication
    // manager's job (replication issue).
    per_node[chosen.front()].push_back(std::move(msg));
    if (!std::binary_search(info->mail_map.begin(), info->mail_map.end(), chosen.front())) {
      new_fragments.emplace_back(*user, chosen.front());
    }
  }
  for (auto& [node, messages] : per_node) {
    FragmentStore* f = nodes_.FragmentsOn(node);
    if (!f) co_return Status::Unavailable("fragment node down");
    size_t count = messages.size();
    PORCUPINE_CO_RETURN_IF_ERROR(co_await f->Store(std::move(messages), body));
    std::lock_guard lock(mu_);
    stats_.messages_stored += count;
    stats_.bytes_stored += count * body->size();
  }
  // The mail is durable now; a lost MailMapAdd is repaired by reconstruction.
  for (auto& [user, node] : new_fragments) {
    if (manager::UserManager* m = ManagerOf(user)) (void)co_await m->MailMapAdd(user, node);
  }
  co_return Status::Ok();
}

asio::awaitable<Result<std::vector<store::MessageMeta>>> MailService::ListEverywhere(
    const std::string& user, const std::vector<NodeId>& nodes) {
  std::map<store::MessageId, store::MessageMeta> merged;  // de-duplicates replicas
  for (NodeId n : nodes) {
    FragmentStore* f = nodes_.FragmentsOn(n);
    if (!f) continue;  // a down node gives a partial mailbox, not an error
    Result<std::vector<store::MessageMeta>> part = co_await f->List(user);
    if (!part.ok()) continue;
    for (store::MessageMeta& m : *part) {
      if (auto id = store::MessageId::FromBytes(m.id())) merged.emplace(*id, std::move(m));
    }
  }
  std::vector<store::MessageMeta> out;
  out.reserve(merged.size());
  for (auto& [id, m] : merged) out.push_back(std::move(m));
  co_return out;
}

asio::awaitable<Result<std::vector<MailboxEntry>>> MailService::OpenMailbox(std::string login,
                                                                            std::string password,
                                                                            std::string* user_out) {
  const Status denied = Status::PermissionDenied("invalid credentials");
  std::optional<std::string> user =
      LoginToAddress(login, options_.domains.empty() ? "" : options_.domains.front());
  if (!user) co_return denied;
  manager::UserManager* m = ManagerOf(*user);
  if (!m) co_return Status::Unavailable("user manager unreachable");
  PORCUPINE_CO_RETURN_IF_ERROR(co_await m->Authenticate(*user, password));
  Result<manager::UserInfo> info = co_await m->LookupUser(*user);
  if (!info.ok()) co_return info.status();
  Result<std::vector<store::MessageMeta>> metas = co_await ListEverywhere(*user, info->mail_map);
  if (!metas.ok()) co_return metas.status();
  std::vector<MailboxEntry> out;
  for (const store::MessageMeta& meta : *metas) {
    out.push_back({*store::MessageId::FromBytes(meta.id()), meta.size()});
  }
  *user_out = *user;
  co_return out;
}

asio::awaitable<Result<std::string>> MailService::ReadMessage(std::string user,
                                                              store::MessageId id) {
  manager::UserManager* m = ManagerOf(user);
  if (!m) co_return Status::Unavailable("user manager unreachable");
  Result<manager::UserInfo> info = co_await m->LookupUser(user);
  if (!info.ok()) co_return info.status();
  for (NodeId n : info->mail_map) {
    FragmentStore* f = nodes_.FragmentsOn(n);
    if (!f) continue;
    Result<std::string> body = co_await f->Fetch(user, id);
    if (body.ok() || body.status().code() != Code::kNotFound) co_return body;
  }
  co_return Status::NotFound("no such message");
}

asio::awaitable<Status> MailService::DeleteMessages(std::string user,
                                                    std::vector<store::MessageId> ids) {
  manager::UserManager* m = ManagerOf(user);
  if (!m) co_return Status::Unavailable("user manager unreachable");
  Result<manager::UserInfo> info = co_await m->LookupUser(user);
  if (!info.ok()) co_return info.status();
  for (NodeId n : info->mail_map) {
    FragmentStore* f = nodes_.FragmentsOn(n);
    if (!f) co_return Status::Unavailable("a fragment node is down; deletion deferred");
    PORCUPINE_CO_RETURN_IF_ERROR(co_await f->Delete(user, ids));
  }
  co_return Status::Ok();
}

asio::awaitable<Status> MailService::DeleteAllMail(std::string user) {
  manager::UserManager* m = ManagerOf(user);
  if (!m) co_return Status::Unavailable("user manager unreachable");
  Result<manager::UserInfo> info = co_await m->LookupUser(user);
  if (!info.ok()) co_return info.status();
  Result<std::vector<store::MessageMeta>> metas = co_await ListEverywhere(user, info->mail_map);
  if (!metas.ok()) co_return metas.status();
  std::vector<store::MessageId> ids;
  for (const store::MessageMeta& meta : *metas)
    ids.push_back(*store::MessageId::FromBytes(meta.id()));
  co_return co_await DeleteMessages(user, std::move(ids));
}

MailService::Stats MailService::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace porcupine::mail
