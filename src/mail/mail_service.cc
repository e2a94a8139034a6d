#include "mail/mail_service.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "core/address.h"
#include "core/async.h"
#include "core/hash.h"

namespace porcupine::mail {

MailService::MailService(const MailServiceOptions& options, manager::ManagerRouter& managers,
                         manager::ViewSource& views, NodeDirectory& nodes,
                         manager::Credentials& credentials, LoginGate& logins, Hlc& hlc)
    : options_(options),
      rules_{options.domains,
             options.postmaster.empty() ? DefaultPostmaster(options.domains) : options.postmaster},
      managers_(managers),
      views_(views),
      nodes_(nodes),
      credentials_(credentials),
      logins_(logins),
      hlc_(hlc),
      rng_(std::random_device{}()) {}

bool MailService::IsLocalDomain(std::string_view domain) const {
  return std::find(options_.domains.begin(), options_.domains.end(), domain) !=
         options_.domains.end();
}

asio::awaitable<RecipientCheck> MailService::CheckRecipient(std::string address) {
  std::optional<std::string> user = ResolveRecipient(rules_, address);
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

asio::awaitable<MailService::Stored> MailService::StoreOn(NodeId node, std::vector<Pending> batch,
                                                          std::shared_ptr<const std::string> body,
                                                          MemoryBudget* budget) {
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
    // A store on another node copies the body into its request and that
    // into the bytes on the wire: as much memory again as the message, twice.
    MemoryReservation copies(budget);
    if (f && node != nodes_.self() && !copies.Resize(2 * body->size())) {
      co_return Stored{Status::ResourceExhausted("no memory for the message's copies to a store")};
    }
    st = Status::Unavailable("fragment node left the view");
    if (f) st = co_await f->Store(std::move(messages), body, views_.Current()->epoch);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      stats_.messages_stored += count;
      stats_.bytes_stored += count * body->size();
      co_return Stored{st};
    }
    // Only a store that surely did not happen is tried elsewhere under the
    // same message id. When the outcome is unknown (a timeout, a connection
    // lost mid-call) the node may hold the message with its replica set: a
    // second set under one id could hide a copy from a later delete. The
    // client retries then (a duplicate at worst, never a lost message).
    if (st.code() == Code::kUnknownOutcome)
      co_return Stored{Status::Unavailable(st.message()), true};
    if (st.code() != Code::kUnavailable) co_return Stored{st};
    failed.push_back(node);
    std::vector<NodeId> again =
        ChooseNodes(batch.front().message.user, batch.front().mail_map, failed);
    if (again.empty()) co_return Stored{st};
    node = again.front();
    for (Pending& p : batch) {
      p.message.meta.clear_replicas();
      for (NodeId n : again) p.message.meta.add_replicas(n);
    }
  }
  co_return Stored{st};
}

void MailService::Place(const std::string& user, const manager::FolderState& where, uint32_t uid,
                        std::vector<std::string> flags, InternalDate date, uint64_t size,
                        std::map<NodeId, std::vector<Pending>>& per_node) {
  std::vector<NodeId> chosen = ChooseNodes(user, where.mail_map, {});
  Pending p{{user, {}, false, where.mail_map}, where.mail_map};
  store::MessageId id = NewMessageId();
  store::MessageMeta& meta = p.message.meta;
  meta.set_version(1);
  meta.set_id(id.ToBytes());
  meta.set_folder(where.folder_id);
  meta.set_uid(uid);
  for (std::string& f : flags) meta.add_flags(std::move(f));
  meta.set_internal_date_ms(date.ms);
  meta.set_internal_date_zone(date.zone);
  meta.set_size(size);
  meta.set_hlc(id.hlc);
  for (NodeId n : chosen) meta.add_replicas(n);
  // The least loaded replica coordinates: it stores, pushes to the others
  // and answers when enough copies are durable.
  per_node[chosen.front()].push_back(std::move(p));
}

asio::awaitable<MailService::Stored> MailService::StoreAll(
    std::map<NodeId, std::vector<Pending>> per_node, std::shared_ptr<const std::string> body,
    MemoryBudget* budget) {
  std::vector<asio::awaitable<Stored>> stores;
  for (auto& [node, batch] : per_node) {
    stores.push_back(StoreOn(node, std::move(batch), body, budget));
  }
  std::vector<Stored> stored = co_await WhenAll(std::move(stores));
  Stored out;
  bool some_ok = false;
  for (const Stored& s : stored) {
    some_ok = some_ok || s.status.ok();
    out.maybe_stored = out.maybe_stored || s.maybe_stored;
    if (out.status.ok() && !s.status.ok()) out.status = s.status;
  }
  out.maybe_stored = !out.status.ok() && (out.maybe_stored || some_ok);
  co_return out;
}

asio::awaitable<Status> MailService::Deliver(std::vector<std::string> recipients,
                                             std::string message, DeliveryReport* report) {
  auto body = std::make_shared<const std::string>(std::move(message));
  std::map<NodeId, std::vector<Pending>> per_node;
  const int64_t now_ms = Hlc::PhysicalMs(hlc_.Now());
  std::vector<std::pair<std::string, uint32_t>> handed_out;  // user, INBOX UID
  std::set<std::string> users;  // each mailbox gets one copy (postmaster@ of two domains)
  Status st;
  for (const std::string& rcpt : recipients) {
    std::optional<std::string> user = ResolveRecipient(rules_, rcpt);
    if (!user) {
      st = Status::InvalidArgument("bad recipient " + rcpt);
      break;
    }
    if (!users.insert(*user).second) continue;
    // One call to the manager: the mail map and the message's INBOX UID.
    Result<manager::FolderState> where =
        co_await managers_.Folders(*user, manager::FolderOp::Allocate("INBOX", 1));
    if (!where.ok()) {
      st = where.status();
      break;
    }
    handed_out.emplace_back(*user, where->first_uid);
    if (ChooseNodes(*user, where->mail_map, {}).empty()) {
      st = Status::Unavailable("no live node to store mail");
      break;
    }
    Place(*user, *where, where->first_uid, {}, {now_ms, 0}, body->size(), per_node);
  }
  if (st.ok()) {
    Stored stored =
        co_await StoreAll(std::move(per_node), std::move(body), options_.delivery_budget);
    st = stored.status;
    if (report) report->maybe_stored = stored.maybe_stored;
    if (report && st.ok()) report->copies = users.size();
  }
  if (!st.ok()) {
    // The client tries again: these UIDs must not hold newer mail back. (A
    // store of unknown outcome that lands anyway shows as a late message.)
    for (auto& [user, uid] : handed_out) {
      std::vector<uint32_t> uids(1, uid);  // named: g++ 12 and braced lists in coroutines
      co_await ReleaseUids(std::move(user), store::kInboxFolder, std::move(uids));
    }
  }
  co_return st;
}

asio::awaitable<Result<Listing>> MailService::ListOn(NodeId node, std::string user, uint32_t folder,
                                                     uint64_t if_changed) {
  FragmentStore* f = nodes_.FragmentsOn(node);
  if (!f) co_return Status::Unavailable("not a member");
  co_return co_await f->List(std::move(user), folder, if_changed);
}

void MailService::AskPastHolders(ListingCache& cache, std::vector<NodeId>& nodes) {
  // A node leaves the mail map when its fragment of the user empties
  // (LocalFragments::MaybeEmptied). Whoever showed its messages must hear
  // it answer "none": not asked, it would look like a node that is down,
  // whose messages a session keeps (ImapBackend). One more listing each.
  for (const auto& [node, part] : cache.parts) {
    if (part.messages.empty()) continue;
    if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
  }
  std::erase_if(cache.parts, [&](const auto& part) {
    return std::find(nodes.begin(), nodes.end(), part.first) == nodes.end();
  });
}

asio::awaitable<std::vector<MailboxEntry>> MailService::ListEverywhere(
    std::string user, std::vector<NodeId> nodes, uint32_t folder, std::vector<NodeId>* answered,
    ListingCache* cache, bool merge_unchanged) {
  if (cache && cache->folder != folder) {
    *cache = ListingCache{};
    cache->folder = folder;
  }
  if (cache) AskPastHolders(*cache, nodes);
  std::vector<asio::awaitable<Result<Listing>>> lists;
  for (NodeId n : nodes) {
    uint64_t if_changed = 0;
    if (cache) {
      auto it = cache->parts.find(n);
      if (it != cache->parts.end()) if_changed = it->second.version;
    }
    lists.push_back(ListOn(n, user, folder, if_changed));
  }
  std::vector<Result<Listing>> parts = co_await WhenAll(std::move(lists));
  std::vector<const std::vector<store::MessageMeta>*> metas(parts.size(), nullptr);
  std::vector<NodeId> listed;
  bool unchanged = cache != nullptr;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].ok()) continue;  // a down node gives a partial mailbox, not an error
    Listing& part = *parts[i];
    metas[i] = &part.messages;
    unchanged = unchanged && part.unchanged;
    if (cache && part.version != 0) {
      ListingCache::Part& held = cache->parts[nodes[i]];
      if (!part.unchanged) held = {part.version, std::move(part.messages)};
      metas[i] = &held.messages;
    } else if (part.unchanged) {
      continue;  // cannot happen: only a cached listing is asked with a version
    }
    listed.push_back(nodes[i]);
  }
  if (answered) *answered = listed;
  if (cache) {
    // Nobody answering is no news either way: the caller gets the (empty) listing.
    cache->unchanged = unchanged && !listed.empty() && listed == cache->answered;
    cache->answered = std::move(listed);
    if (cache->unchanged && !merge_unchanged) co_return std::vector<MailboxEntry>{};
  }
  std::map<store::MessageId, MailboxEntry> merged;  // de-duplicates replicas
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!metas[i]) continue;
    for (const store::MessageMeta& m : *metas[i]) {
      std::optional<store::MessageId> id = store::MessageId::FromBytes(m.id());
      if (!id) continue;
      MailboxEntry& e = merged[*id];
      e.id = *id;
      e.size = m.size();
      e.holders.push_back(nodes[i]);
      // Replicas may disagree on the metadata for a moment: the newest wins.
      if (e.holders.size() == 1 || m.hlc() > e.hlc) {
        e.folder = m.folder();
        e.uid = m.uid();
        e.flags.assign(m.flags().begin(), m.flags().end());
        e.internal_date_ms = m.internal_date_ms();
        e.internal_date_zone = m.internal_date_zone();
        e.hlc = m.hlc();
      }
    }
  }
  std::vector<MailboxEntry> out;
  out.reserve(merged.size());
  for (auto& [id, e] : merged) out.push_back(std::move(e));
  co_return out;
}

asio::awaitable<Result<std::vector<MailboxEntry>>> MailService::OpenMailbox(std::string login,
                                                                            std::string password,
                                                                            std::string* user_out,
                                                                            std::string client) {
  std::string user;
  Result<manager::UserInfo> info =
      co_await CheckLogin(std::move(login), std::move(password), std::move(client), &user);
  if (!info.ok()) co_return info.status();
  *user_out = user;
  co_return co_await ListEverywhere(user, info->mail_map, store::kInboxFolder);
}

asio::awaitable<Result<std::vector<MailboxEntry>>> MailService::ListMaildrop(std::string user) {
  Result<manager::UserInfo> info = co_await managers_.LookupUser(user, false);
  if (!info.ok()) co_return info.status();
  co_return co_await ListEverywhere(user, info->mail_map, store::kInboxFolder);
}

asio::awaitable<Result<std::string>> MailService::ReadMessage(std::string user,
                                                              MailboxEntry entry) {
  std::vector<NodeId> holders = entry.holders;
  SortHolders(holders);
  Status last = Status::NotFound("no such message");
  for (NodeId n : holders) {
    FragmentStore* f = nodes_.FragmentsOn(n);
    if (!f) {
      last = Status::Unavailable("the node holding the message left");
      continue;
    }
    Result<std::string> body = co_await f->Fetch(user, entry.folder, entry.id);
    if (body.ok()) co_return body;
    last = body.status();
  }
  co_return last;
}

asio::awaitable<Status> MailService::DeleteMessages(std::string user,
                                                    std::vector<MailboxEntry> entries) {
  // One holder coordinates each delete (it pushes the tombstone to the
  // others); when it cannot be reached the next holder does.
  if (entries.empty()) co_return Status::Ok();
  const uint32_t folder = entries.front().folder;
  // A message still counted in flight would hold newer ones back once gone.
  co_await ReleaseYoung(user, entries);
  for (MailboxEntry& e : entries) SortHolders(e.holders);
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
      deletes.push_back(f->Delete(user, folder, std::move(ids)));
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
  Result<manager::FolderState> state = co_await managers_.Folders(user, {});
  if (!state.ok()) co_return state.status();
  for (const manager::FolderStatus& f : state->folders) {
    std::vector<MailboxEntry> entries =
        co_await ListEverywhere(user, state->mail_map, f.folder.id());
    PORCUPINE_CO_RETURN_IF_ERROR(co_await DeleteMessages(user, std::move(entries)));
  }
  co_return Status::Ok();
}

void MailService::SortHolders(std::vector<NodeId>& holders) {
  const NodeId self = nodes_.self();
  std::stable_sort(holders.begin(), holders.end(), [&](NodeId a, NodeId b) {
    if ((a == self) != (b == self)) return a == self;
    return nodes_.LoadOf(a) < nodes_.LoadOf(b);
  });
}

namespace {

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

asio::awaitable<Result<manager::UserInfo>> MailService::CheckLogin(std::string login,
                                                                   std::string password,
                                                                   std::string client,
                                                                   std::string* user_out) {
  std::optional<std::string> user =
      LoginToAddress(login, options_.domains.empty() ? "" : options_.domains.front());
  // The throttle counts the canonical address, or the login as given when it
  // is none (bounded: it is a key of a table).
  const std::string account = user ? *user : LowerAscii(std::string_view(login).substr(0, 320));
  PORCUPINE_CO_RETURN_IF_ERROR(logins_.Admit(client, account));
  // No hash (no such user, or not a local domain): the check runs against
  // the dummy hash, so that it costs what a wrong password costs.
  Result<manager::UserInfo> info = Status::NotFound("not a local address");
  if (user && IsLocalDomain(DomainOf(*user))) {
    info = co_await managers_.LookupUser(*user, true);
    // The manager could not be asked: nothing was checked, not a failure.
    if (!info.ok() && info.status().code() != Code::kNotFound) co_return info.status();
  }
  std::string hash = info.ok() ? std::move(info->password_hash) : std::string();
  const bool ok = co_await credentials_.Check(account, std::move(password), std::move(hash));
  PORCUPINE_CO_RETURN_IF_ERROR(co_await logins_.Finish(client, account, ok));
  if (!ok) co_return Status::PermissionDenied("invalid credentials");
  *user_out = *user;
  co_return info;
}

asio::awaitable<Result<MailService::ScramAccount>> MailService::BeginScram(std::string login,
                                                                           std::string client) {
  std::optional<std::string> user =
      LoginToAddress(login, options_.domains.empty() ? "" : options_.domains.front());
  ScramAccount out;
  out.account = user ? *user : LowerAscii(std::string_view(login).substr(0, 320));
  PORCUPINE_CO_RETURN_IF_ERROR(logins_.Admit(client, out.account));
  if (user && IsLocalDomain(DomainOf(*user))) {
    Result<manager::UserInfo> info = co_await managers_.LookupUser(*user, true);
    if (info.ok()) {
      out.user = *user;
      out.secrets = std::move(info->scram_sha256);
    } else if (info.status().code() != Code::kNotFound) {
      co_return info.status();  // nothing was checked: not a failure
    }
  }
  co_return out;
}

asio::awaitable<Status> MailService::FinishScram(std::string client, std::string account,
                                                 bool success) {
  co_return co_await logins_.Finish(std::move(client), std::move(account), success);
}

asio::awaitable<Result<std::string>> MailService::Authenticate(std::string login,
                                                               std::string password,
                                                               std::string client) {
  std::string user;
  Result<manager::UserInfo> info =
      co_await CheckLogin(std::move(login), std::move(password), std::move(client), &user);
  if (!info.ok()) co_return info.status();
  co_return user;
}

asio::awaitable<Result<manager::FolderState>> MailService::Folders(std::string user,
                                                                   manager::FolderOp op) {
  co_return co_await managers_.Folders(std::move(user), std::move(op));
}

namespace {

// Whether `name` names the folder stored as `stored`: the inbox (and the
// first level of its children's names) in any case, as the manager takes it
// (manager/user_manager.h FolderOp::name); other names exactly.
bool SameFolder(std::string_view stored, std::string_view name) {
  if (stored == name) return true;
  if (stored.size() != name.size() || !stored.starts_with("INBOX")) return false;
  if (stored.size() > 5 && stored[5] != '/') return false;
  for (size_t i = 0; i < 5; ++i) {
    if (std::toupper(static_cast<unsigned char>(name[i])) != stored[i]) return false;
  }
  return stored.substr(5) == name.substr(5);
}

const manager::FolderStatus* FindFolder(const manager::FolderState& st, std::string_view name) {
  for (const manager::FolderStatus& f : st.folders) {
    if (SameFolder(f.folder.name(), name)) return &f;
  }
  return nullptr;
}

// The lowest UID of `in_flight` (ascending) that no message of `sorted`
// (ascending by UID) has; 0 when each has one.
uint32_t HoldFrom(const std::vector<manager::UidRange>& in_flight,
                  const std::vector<MailboxEntry>& sorted) {
  auto it = sorted.begin();
  for (const manager::UidRange& r : in_flight) {
    for (uint64_t uid = r.first; uid < uint64_t{r.first} + r.count; ++uid) {
      while (it != sorted.end() && it->uid < uid) ++it;
      if (it == sorted.end() || it->uid != uid) return static_cast<uint32_t>(uid);
    }
  }
  return 0;
}

}  // namespace

asio::awaitable<Result<FolderView>> MailService::OpenFolder(
    std::string user, std::string folder, bool claim_recent, ListingCache* cache,
    std::function<bool(const store::MessageId&)> shown) {
  Result<manager::FolderState> st =
      co_await managers_.Folders(user, {manager::FolderOp::Kind::kRead, folder});
  if (!st.ok()) co_return st.status();
  const manager::FolderStatus* f = FindFolder(*st, folder);
  if (!f) co_return Status::NotFound("no such folder: " + folder);
  auto by_uid = [](const MailboxEntry& a, const MailboxEntry& b) {
    return a.uid != b.uid ? a.uid < b.uid : a.id < b.id;
  };
  // What is held back depends on the listing and on the UIDs in flight: an
  // unchanged listing is merged again when only the latter changed.
  const bool same_in_flight =
      cache && cache->folder == f->folder.id() && cache->in_flight == f->in_flight;
  // Await into a named variable: g++ 12 loses the already built members of
  // an aggregate whose initializer suspends (docs/development.md).
  std::vector<NodeId> answered;
  std::vector<MailboxEntry> messages = co_await ListEverywhere(user, st->mail_map, f->folder.id(),
                                                               &answered, cache, !same_in_flight);
  if (cache && cache->unchanged && same_in_flight) {
    FolderView view{*f, {}, std::move(answered)};
    view.unchanged = true;
    view.hold_from = cache->hold_from;
    if (view.hold_from) view.status.uidnext = std::min(view.status.uidnext, view.hold_from);
    co_return view;
  }
  std::sort(messages.begin(), messages.end(), by_uid);
  // Two messages under one UID (two managers during a partition, DESIGN.md
  // §6): the lower message id keeps it, the others get new UIDs and look
  // like new messages to the clients; nothing is hidden for long.
  std::vector<MailboxEntry> collided;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].uid == 0 || (i > 0 && messages[i].uid == messages[i - 1].uid)) {
      collided.push_back(messages[i]);
    }
  }
  uint32_t highest = messages.empty() ? 0 : messages.back().uid;
  if (!collided.empty()) {
    Status renumbered = co_await Renumber(user, f->folder.name(), std::move(collided), highest);
    if (renumbered.ok()) {
      answered.clear();
      // Without the cache: this listing must return the messages.
      messages = co_await ListEverywhere(user, st->mail_map, f->folder.id(), &answered);
      std::sort(messages.begin(), messages.end(), by_uid);
      highest = messages.empty() ? 0 : messages.back().uid;
    }
  }
  manager::FolderStatus status = *f;
  if (highest >= f->uidnext) {
    // The listing has UIDs handed out after the status was read: by this
    // manager since (what else it handed out meanwhile may still be on its
    // way), or by the other side of a partition (its sequencer moves past
    // them before the next one). Either way a fresh status covers them.
    Result<manager::FolderState> now = co_await managers_.Folders(
        user, manager::FolderOp::Allocate(f->folder.name(), 0, highest + 1));
    const manager::FolderStatus* g = now.ok() ? FindFolder(*now, folder) : nullptr;
    if (g && g->folder.id() == f->folder.id()) {
      status.uidnext = g->uidnext;
      status.in_flight = g->in_flight;  // \Recent stays as claimed
    }
  }
  FolderView view{status, std::move(messages), std::move(answered)};
  // A message stored under UID 9 after one under 10 was listed would appear
  // below a UID a client has seen, and a client that fetches "UID 11:*"
  // would never see it: nothing above a UID still in flight shows yet (nor
  // above what the status does not cover).
  view.hold_from = HoldFrom(status.in_flight, view.messages);
  if (highest >= status.uidnext && (view.hold_from == 0 || view.hold_from > status.uidnext)) {
    view.hold_from = status.uidnext;
  }
  if (cache) {
    cache->in_flight = status.in_flight;
    cache->hold_from = view.hold_from;
  }
  if (view.hold_from) {
    uint32_t uidnext = view.hold_from;
    std::erase_if(view.messages, [&](const MailboxEntry& e) {
      if (e.uid < view.hold_from) return false;
      if (shown && shown(e.id)) {  // already shown: never taken back
        uidnext = std::max(uidnext, e.uid + 1);
        return false;
      }
      return true;
    });
    view.status.uidnext = std::min(view.status.uidnext, uidnext);
  }
  if (claim_recent) co_await ClaimShown(user, view);
  co_return view;
}

asio::awaitable<void> MailService::ClaimShown(const std::string& user, FolderView& view) {
  uint32_t highest = 0;
  for (const MailboxEntry& e : view.messages) highest = std::max(highest, e.uid);
  if (highest < view.status.recent_from) co_return;  // nothing unclaimed shows
  const std::string& name = view.status.folder.name();
  Result<manager::FolderState> st =
      co_await managers_.Folders(user, manager::FolderOp::ClaimRecent(name, highest + 1));
  const manager::FolderStatus* f = st.ok() ? FindFolder(*st, name) : nullptr;
  // Claimed from the horizon before this claim (another session may have
  // moved it meanwhile). Not claimed at all: none is the caller's.
  const bool claimed = f && f->folder.id() == view.status.folder.id();
  view.status.recent_from = claimed ? f->recent_from : highest + 1;
}

asio::awaitable<void> MailService::ReleaseUids(std::string user, uint32_t folder,
                                               std::vector<uint32_t> uids) {
  if (uids.empty()) co_return;
  std::sort(uids.begin(), uids.end());
  std::vector<manager::UidRange> ranges;
  for (uint32_t uid : uids) {
    if (uid == 0) continue;
    if (!ranges.empty() && uint64_t{ranges.back().first} + ranges.back().count == uid) {
      ++ranges.back().count;
    } else if (ranges.empty() || ranges.back().first + ranges.back().count <= uid) {
      ranges.push_back({uid, 1});
    }
  }
  if (ranges.empty()) co_return;
  // Best effort: a UID not released only holds newer messages back until
  // the manager's settle window ends.
  (void)co_await managers_.Folders(std::move(user),
                                   manager::FolderOp::Release(folder, std::move(ranges)));
}

asio::awaitable<void> MailService::ReleaseYoung(const std::string& user,
                                                const std::vector<MailboxEntry>& entries) {
  // A message id carries the time it was made, just after its UID was
  // handed out; twice the window (and a second) absorbs clock skew.
  const int64_t now_ms = Hlc::PhysicalMs(hlc_.Now());
  const int64_t young_ms = 2 * options_.uid_settle_window.count() + 1000;
  std::map<uint32_t, std::vector<uint32_t>> per_folder;
  for (const MailboxEntry& e : entries) {
    if (now_ms - Hlc::PhysicalMs(e.id.hlc) < young_ms) per_folder[e.folder].push_back(e.uid);
  }
  for (auto& [folder, uids] : per_folder) co_await ReleaseUids(user, folder, std::move(uids));
}

asio::awaitable<Status> MailService::Renumber(std::string user, std::string folder,
                                              std::vector<MailboxEntry> entries, uint32_t above) {
  // Old order kept: a late delivery stays behind the ones before it.
  std::sort(entries.begin(), entries.end(), [](const MailboxEntry& a, const MailboxEntry& b) {
    return a.uid != b.uid ? a.uid < b.uid : a.id < b.id;
  });
  constexpr size_t kChunk = 256;  // at most a UID block per manager call
  for (size_t begin = 0; begin < entries.size(); begin += kChunk) {
    const size_t end = std::min(entries.size(), begin + kChunk);
    Result<manager::FolderState> where = co_await managers_.Folders(
        user, manager::FolderOp::Allocate(folder, static_cast<uint32_t>(end - begin),
                                          above < 0xFFFFFFFFu ? above + 1 : above));
    if (!where.ok()) co_return where.status();
    std::vector<std::pair<MailboxEntry, FlagChange>> changes;
    for (size_t i = begin; i < end; ++i) {
      FlagChange c{entries[i].id,
                   FlagChange::Mode::kRenumber,
                   {},
                   entries[i].uid,
                   where->first_uid + static_cast<uint32_t>(i - begin)};
      changes.emplace_back(std::move(entries[i]), std::move(c));
    }
    std::vector<FlagChange> given;
    for (const auto& change : changes) given.push_back(change.second);
    Result<Coordinated> done = co_await Coordinate(user, std::move(changes));
    // Neither the UID a message left nor one another session's renumbering
    // made unused (it moved the message first) may hold newer ones back.
    std::vector<uint32_t> unused;
    for (const FlagChange& c : given) {
      const bool moved = done.ok() && done->changed.count(c.id);
      if (moved || (done.ok() && done->unsure.count(c.id))) {
        if (moved) unused.push_back(c.from_uid);
      } else {
        unused.push_back(c.to_uid);
      }
    }
    co_await ReleaseUids(user, where->folder_id, std::move(unused));
    PORCUPINE_CO_RETURN_IF_ERROR(done.status());
  }
  co_return Status::Ok();
}

asio::awaitable<Result<Placed>> MailService::Append(std::string user, std::string folder,
                                                    std::vector<std::string> flags,
                                                    InternalDate date, std::string message) {
  Result<manager::FolderState> where =
      co_await managers_.Folders(user, manager::FolderOp::Allocate(folder, 1));
  if (!where.ok()) co_return where.status();
  if (ChooseNodes(user, where->mail_map, {}).empty()) {
    std::vector<uint32_t> uids(1, where->first_uid);
    co_await ReleaseUids(user, where->folder_id, std::move(uids));
    co_return Status::Unavailable("no live node to store mail");
  }
  auto body = std::make_shared<const std::string>(std::move(message));
  if (date.ms == 0) date = {Hlc::PhysicalMs(hlc_.Now()), 0};
  std::map<NodeId, std::vector<Pending>> per_node;
  Place(user, *where, where->first_uid, std::move(flags), date, body->size(), per_node);
  // The body is the IMAP session's (reserved there); copies to another
  // node's store are reserved here, as for SMTP.
  Stored all = co_await StoreAll(std::move(per_node), std::move(body), options_.delivery_budget);
  Status stored = std::move(all.status);
  if (!stored.ok()) {
    std::vector<uint32_t> uids(1, where->first_uid);
    co_await ReleaseUids(user, where->folder_id, std::move(uids));
    co_return stored;
  }
  co_return Placed{where->uidvalidity, {where->first_uid}};
}

asio::awaitable<Result<Placed>> MailService::Copy(std::string user,
                                                  std::vector<MailboxEntry> entries, std::string to,
                                                  bool move) {
  Placed placed;
  std::vector<MailboxEntry> copies;  // as stored, for a move that loses its race
  uint32_t to_id = 0;                // the target folder
  std::vector<uint32_t> unused;      // UIDs handed out for copies not made (yet)
  // A copy that fails half way takes back the copies made so far (best
  // effort; DeleteMessages releases their UIDs) and the UIDs of the others.
  auto undo = [&](Status st) -> asio::awaitable<Result<Placed>> {
    (void)co_await DeleteMessages(user, std::move(copies));
    co_await ReleaseUids(user, to_id, std::move(unused));
    co_return st;
  };
  // UIDs are reserved in blocks of at most this many per manager call.
  constexpr size_t kChunk = 256;
  for (size_t begin = 0; begin < entries.size(); begin += kChunk) {
    const size_t end = std::min(entries.size(), begin + kChunk);
    Result<manager::FolderState> where = co_await managers_.Folders(
        user, manager::FolderOp::Allocate(to, static_cast<uint32_t>(end - begin)));
    if (!where.ok()) co_return co_await undo(where.status());
    to_id = where->folder_id;
    unused.clear();
    for (size_t i = begin; i < end; ++i) {
      unused.push_back(where->first_uid + static_cast<uint32_t>(i - begin));
    }
    placed.uidvalidity = where->uidvalidity;
    for (size_t i = begin; i < end; ++i) {
      // Each copy is a new message (its own id and body key): the source
      // may be expunged while the copy lives on.
      Result<std::string> raw = co_await ReadMessage(user, entries[i]);
      // All or nothing (RFC 2180 §4.4.1), e.g. when a racing move took
      // this source first.
      if (!raw.ok()) co_return co_await undo(raw.status());
      auto body = std::make_shared<const std::string>(std::move(*raw));
      const uint32_t uid = where->first_uid + static_cast<uint32_t>(i - begin);
      std::map<NodeId, std::vector<Pending>> per_node;
      const InternalDate date{entries[i].internal_date_ms, entries[i].internal_date_zone};
      Place(user, *where, uid, entries[i].flags, date, body->size(), per_node);
      const store::MessageMeta& meta = per_node.begin()->second.front().message.meta;
      MailboxEntry copy;
      copy.id = *store::MessageId::FromBytes(meta.id());
      copy.holders.assign(meta.replicas().begin(), meta.replicas().end());
      copy.folder = meta.folder();
      copy.uid = uid;
      copies.push_back(std::move(copy));
      std::erase(unused, uid);
      // The body is the IMAP session's (reserved there); copies to another
      // node's store are reserved here, as for SMTP.
      Stored all =
          co_await StoreAll(std::move(per_node), std::move(body), options_.delivery_budget);
      Status stored = std::move(all.status);
      if (!stored.ok()) co_return co_await undo(stored);
      placed.uids.push_back(uid);
    }
  }
  if (!move || entries.empty()) co_return placed;
  // The originals go at their coordinating holders, so that of two sessions
  // moving one message only one deletes it: the other takes its copy back.
  co_await ReleaseYoung(user, entries);
  std::vector<std::pair<MailboxEntry, FlagChange>> ends;
  for (const MailboxEntry& e : entries) {
    ends.emplace_back(e, FlagChange{e.id, FlagChange::Mode::kTombstone, {}});
  }
  Result<Coordinated> done = co_await Coordinate(user, std::move(ends));
  if (!done.ok()) co_return done.status();  // copies stay: a duplicate at worst, never a loss
  std::vector<MailboxEntry> lost;
  std::vector<uint32_t> moved;
  for (size_t i = 0; i < entries.size(); ++i) {
    // Unsure (a holder that may have applied it did not answer): keep.
    if (done->changed.count(entries[i].id) || done->unsure.count(entries[i].id)) {
      moved.push_back(placed.uids[i]);
    } else {
      lost.push_back(std::move(copies[i]));
    }
  }
  // Best effort; the copies are young, so DeleteMessages releases their UIDs.
  if (!lost.empty()) (void)co_await DeleteMessages(user, std::move(lost));
  if (moved.empty()) co_return Status::Aborted("moved or deleted by another session");
  placed.uids = std::move(moved);
  co_return placed;
}

asio::awaitable<Status> MailService::SetFlags(std::string user, std::vector<MailboxEntry> entries,
                                              FlagChange::Mode mode,
                                              std::vector<std::string> flags) {
  std::vector<std::pair<MailboxEntry, FlagChange>> changes;
  for (MailboxEntry& e : entries) {
    FlagChange c{e.id, mode, flags};
    changes.emplace_back(std::move(e), std::move(c));
  }
  co_return (co_await Coordinate(std::move(user), std::move(changes))).status();
}

asio::awaitable<Result<MailService::Coordinated>> MailService::Coordinate(
    std::string user, std::vector<std::pair<MailboxEntry, FlagChange>> changes) {
  // One holder coordinates each update, the next one when it cannot be
  // reached. Every node picks the same one (the lowest id), so concurrent
  // changes of one message from sessions on different nodes meet at one
  // read-modify-write and none is lost.
  Coordinated out;
  for (auto& [e, c] : changes) std::sort(e.holders.begin(), e.holders.end());
  auto left = std::move(changes);
  for (size_t attempt = 0; !left.empty(); ++attempt) {
    std::map<std::pair<NodeId, uint32_t>, std::vector<std::pair<MailboxEntry, FlagChange>>>
        per_node;
    for (auto& change : left) {
      const MailboxEntry& e = change.first;
      if (attempt >= e.holders.size()) {
        co_return Status::Unavailable("no node holding the message answers");
      }
      per_node[{e.holders[attempt], e.folder}].push_back(std::move(change));
    }
    left.clear();
    std::vector<asio::awaitable<Result<std::vector<store::MessageId>>>> calls;
    std::vector<std::pair<NodeId, uint32_t>> order;
    for (auto& [key, batch] : per_node) {
      FragmentStore* f = nodes_.FragmentsOn(key.first);
      if (!f) {
        for (auto& change : batch) left.push_back(std::move(change));
        continue;
      }
      std::vector<FlagChange> list;
      for (const auto& change : batch) list.push_back(change.second);
      calls.push_back(f->SetFlags(user, key.second, std::move(list)));
      order.push_back(key);
    }
    std::vector<Result<std::vector<store::MessageId>>> results = co_await WhenAll(std::move(calls));
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) {
        out.changed.insert(results[i]->begin(), results[i]->end());
        continue;
      }
      const Code c = results[i].status().code();
      if (c != Code::kUnavailable && c != Code::kUnknownOutcome) co_return results[i].status();
      for (auto& change : per_node[order[i]]) {
        // It may have been applied there all the same.
        if (c == Code::kUnknownOutcome) out.unsure.insert(change.first.id);
        left.push_back(std::move(change));
      }
    }
  }
  co_return out;
}

MailService::Stats MailService::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace porcupine::mail
