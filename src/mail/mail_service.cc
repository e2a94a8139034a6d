#include "mail/mail_service.h"

#include <algorithm>
#include <map>

#include "core/address.h"
#include "core/async.h"
#include "core/hash.h"

namespace porcupine::mail {

MailService::MailService(const MailServiceOptions& options, manager::ManagerRouter& managers,
                         manager::ViewSource& views, NodeDirectory& nodes,
                         manager::Credentials& credentials, Hlc& hlc)
    : options_(options),
      managers_(managers),
      views_(views),
      nodes_(nodes),
      credentials_(credentials),
      hlc_(hlc),
      rng_(std::random_device{}()) {}

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
  Result<manager::UserInfo> info = co_await managers_.LookupUser(*user);
  if (info.ok()) co_return RecipientCheck::kLocalUser;
  co_return info.status().code() == Code::kNotFound ? RecipientCheck::kUnknownUser
                                                    : RecipientCheck::kTempFail;
}

store::MessageId MailService::NewMessageId() {
  std::lock_guard lock(mu_);
  return store::MessageId{hlc_.Now(), nodes_.self(), ++id_counter_};
}

std::vector<NodeId> MailService::ChooseNodes(const std::string& user,
                                             const std::vector<NodeId>& mail_map,
                                             const std::vector<NodeId>& exclude) {
  std::shared_ptr<const cluster::View> view = views_.Current();
  cluster::BalancerInput in;
  for (NodeId n : view->ids()) {
    if (std::find(exclude.begin(), exclude.end(), n) == exclude.end()) in.live.push_back(n);
  }
  in.mail_map = mail_map;
  in.spread = options_.spread;
  in.copies = options_.copies;
  in.policy = options_.policy;
  in.user_hash = Hash64(user);
  in.load = [this](NodeId n) { return nodes_.LoadOf(n); };
  std::lock_guard lock(mu_);
  return cluster::ChooseReplicas(in, rng_);
}

asio::awaitable<Status> MailService::StoreOn(NodeId node, std::vector<Pending> batch,
                                             std::shared_ptr<const std::string> body) {
  std::vector<NodeId> failed;
  Status st;
  // The chosen node may have just died: choose again without it (the soft
  // spread limit gives way), at most twice.
  for (int attempt = 0; attempt < 3; ++attempt) {
    FragmentStore* f = nodes_.FragmentsOn(node);
    std::vector<NewMessage> messages;
    for (Pending& p : batch) {
      p.message.in_map = std::binary_search(p.mail_map.begin(), p.mail_map.end(), node);
      messages.push_back(p.message);
    }
    const size_t count = messages.size();
    st = Status::Unavailable("fragment node left the view");
    if (f) st = co_await f->Store(std::move(messages), body, views_.Current()->epoch);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      stats_.messages_stored += count;
      stats_.bytes_stored += count * body->size();
      co_return st;
    }
    // Only a store that surely did not happen is tried elsewhere under the
    // same message id. When the outcome is unknown (a timeout, a connection
    // lost mid-call) the node may hold the message with its replica set: a
    // second set under one id could hide a copy from a later delete. The
    // client retries then (a duplicate at worst, never a lost message).
    if (st.code() == Code::kUnknownOutcome) co_return Status::Unavailable(st.message());
    if (st.code() != Code::kUnavailable) co_return st;
    failed.push_back(node);
    std::vector<NodeId> again =
        ChooseNodes(batch.front().message.user, batch.front().mail_map, failed);
    if (again.empty()) co_return st;
    node = again.front();
    for (Pending& p : batch) {
      p.message.meta.clear_replicas();
      for (NodeId n : again) p.message.meta.add_replicas(n);
    }
  }
  co_return st;
}

asio::awaitable<Status> MailService::Deliver(std::vector<std::string> recipients,
                                             std::string message) {
  auto body = std::make_shared<const std::string>(std::move(message));
  std::map<NodeId, std::vector<Pending>> per_node;
  const int64_t now_ms = Hlc::PhysicalMs(hlc_.Now());
  for (const std::string& rcpt : recipients) {
    std::optional<std::string> user = RecipientAddress(rcpt);
    if (!user) co_return Status::InvalidArgument("bad recipient " + rcpt);
    Result<manager::UserInfo> info = co_await managers_.LookupUser(*user);
    if (!info.ok()) co_return info.status();
    std::vector<NodeId> chosen = ChooseNodes(*user, info->mail_map, {});
    if (chosen.empty()) co_return Status::Unavailable("no live node to store mail");
    Pending p{{*user, {}, false, info->mail_map}, info->mail_map};
    store::MessageId id = NewMessageId();
    store::MessageMeta& meta = p.message.meta;
    meta.set_version(1);
    meta.set_id(id.ToBytes());
    meta.set_folder(store::kInboxFolder);
    meta.set_internal_date_ms(now_ms);
    meta.set_size(body->size());
    meta.set_hlc(id.hlc);
    for (NodeId n : chosen) meta.add_replicas(n);
    // The least loaded replica coordinates: it stores, pushes to the others
    // and answers when enough copies are durable.
    per_node[chosen.front()].push_back(std::move(p));
  }
  std::vector<asio::awaitable<Status>> stores;
  for (auto& [node, batch] : per_node) stores.push_back(StoreOn(node, std::move(batch), body));
  std::vector<Status> stored = co_await WhenAll(std::move(stores));
  for (const Status& st : stored) PORCUPINE_CO_RETURN_IF_ERROR(st);
  co_return Status::Ok();
}

asio::awaitable<Result<std::vector<store::MessageMeta>>> MailService::ListOn(NodeId node,
                                                                             std::string user) {
  FragmentStore* f = nodes_.FragmentsOn(node);
  if (!f) co_return Status::Unavailable("not a member");
  co_return co_await f->List(std::move(user));
}

asio::awaitable<std::vector<MailboxEntry>> MailService::ListEverywhere(std::string user,
                                                                       std::vector<NodeId> nodes) {
  std::vector<asio::awaitable<Result<std::vector<store::MessageMeta>>>> lists;
  for (NodeId n : nodes) lists.push_back(ListOn(n, user));
  std::vector<Result<std::vector<store::MessageMeta>>> parts = co_await WhenAll(std::move(lists));
  std::map<store::MessageId, MailboxEntry> merged;  // de-duplicates replicas
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].ok()) continue;  // a down node gives a partial mailbox, not an error
    for (const store::MessageMeta& m : *parts[i]) {
      std::optional<store::MessageId> id = store::MessageId::FromBytes(m.id());
      if (!id) continue;
      MailboxEntry& e = merged[*id];
      e.id = *id;
      e.size = m.size();
      e.holders.push_back(nodes[i]);
    }
  }
  std::vector<MailboxEntry> out;
  out.reserve(merged.size());
  for (auto& [id, e] : merged) out.push_back(std::move(e));
  co_return out;
}

asio::awaitable<Result<std::vector<MailboxEntry>>> MailService::OpenMailbox(std::string login,
                                                                            std::string password,
                                                                            std::string* user_out) {
  const Status denied = Status::PermissionDenied("invalid credentials");
  std::optional<std::string> user =
      LoginToAddress(login, options_.domains.empty() ? "" : options_.domains.front());
  if (!user || !IsLocalDomain(DomainOf(*user))) co_return denied;
  Result<manager::UserInfo> info = co_await managers_.LookupUser(*user, true);
  if (!info.ok()) co_return info.status().code() == Code::kNotFound ? denied : info.status();
  if (!co_await credentials_.Check(*user, password, info->password_hash)) co_return denied;
  *user_out = *user;
  co_return co_await ListEverywhere(*user, info->mail_map);
}

asio::awaitable<Result<std::string>> MailService::ReadMessage(std::string user,
                                                              MailboxEntry entry) {
  std::vector<NodeId> holders = entry.holders;
  const NodeId self = nodes_.self();
  std::stable_sort(holders.begin(), holders.end(), [&](NodeId a, NodeId b) {
    if ((a == self) != (b == self)) return a == self;
    return nodes_.LoadOf(a) < nodes_.LoadOf(b);
  });
  Status last = Status::NotFound("no such message");
  for (NodeId n : holders) {
    FragmentStore* f = nodes_.FragmentsOn(n);
    if (!f) {
      last = Status::Unavailable("the node holding the message left");
      continue;
    }
    Result<std::string> body = co_await f->Fetch(user, entry.id);
    if (body.ok()) co_return body;
    last = body.status();
  }
  co_return last;
}

asio::awaitable<Status> MailService::DeleteMessages(std::string user,
                                                    std::vector<MailboxEntry> entries) {
  // One holder coordinates each delete (it pushes the tombstone to the
  // others); when it cannot be reached the next holder does.
  const NodeId self = nodes_.self();
  for (MailboxEntry& e : entries) {
    std::stable_sort(e.holders.begin(), e.holders.end(), [&](NodeId a, NodeId b) {
      if ((a == self) != (b == self)) return a == self;
      return nodes_.LoadOf(a) < nodes_.LoadOf(b);
    });
  }
  std::vector<MailboxEntry> left = std::move(entries);
  for (size_t attempt = 0; !left.empty(); ++attempt) {
    std::map<NodeId, std::vector<store::MessageId>> per_node;
    std::map<NodeId, std::vector<MailboxEntry>> owners;
    for (MailboxEntry& e : left) {
      if (attempt >= e.holders.size()) {
        co_return Status::Unavailable("no node holding the message answers; deletion deferred");
      }
      NodeId n = e.holders[attempt];
      per_node[n].push_back(e.id);
      owners[n].push_back(std::move(e));
    }
    left.clear();
    std::vector<asio::awaitable<Status>> deletes;
    std::vector<NodeId> order;
    for (auto& [node, ids] : per_node) {
      FragmentStore* f = nodes_.FragmentsOn(node);
      if (!f) {
        for (MailboxEntry& e : owners[node]) left.push_back(std::move(e));
        continue;
      }
      deletes.push_back(f->Delete(user, std::move(ids)));
      order.push_back(node);
    }
    std::vector<Status> results = co_await WhenAll(std::move(deletes));
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) continue;
      const Code c = results[i].code();
      if (c != Code::kUnavailable && c != Code::kUnknownOutcome) co_return results[i];
      for (MailboxEntry& e : owners[order[i]]) left.push_back(std::move(e));
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Status> MailService::DeleteAllMail(std::string user) {
  Result<manager::UserInfo> info = co_await managers_.LookupUser(user);
  if (!info.ok()) co_return info.status();
  std::vector<MailboxEntry> entries = co_await ListEverywhere(user, info->mail_map);
  co_return co_await DeleteMessages(user, std::move(entries));
}

MailService::Stats MailService::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace porcupine::mail
