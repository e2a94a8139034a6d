#include "manager/local_manager.h"

#include <algorithm>

#include "core/hash.h"
#include "store/profile_merge.h"
#include "store/store.h"

namespace porcupine::manager {

namespace {

// UIDs reserved in the profile at a time: one profile write per this many
// deliveries to a folder; a manager change skips what is left of a block.
constexpr uint32_t kUidBlock = 1024;
constexpr size_t kMaxFolderName = 255;
constexpr size_t kMaxFolders = 4096;
constexpr size_t kMaxReleaseRanges = 4096;  // ranges one kReleaseUids may name

bool IsInbox(std::string_view name) {
  if (name.size() != 5) return false;
  for (size_t i = 0; i < 5; ++i) {
    if (std::toupper(static_cast<unsigned char>(name[i])) != "INBOX"[i]) return false;
  }
  return true;
}

// Folder names as stored: "INBOX" for the inbox, '/' between levels.
std::string CanonicalName(std::string_view name) {
  if (IsInbox(name)) return "INBOX";
  if (name.size() > 6 && IsInbox(name.substr(0, 5)) && name[5] == '/') {
    return "INBOX" + std::string(name.substr(5));
  }
  return std::string(name);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFolderName) return false;
  if (name.front() == '/' || name.back() == '/') return false;
  if (name.find("//") != std::string_view::npos) return false;
  for (char c : name) {
    if (c == '\0' || c == '\r' || c == '\n' || c == '*' || c == '%') return false;
  }
  return true;
}

store::Folder* FindFolder(store::Profile& p, std::string_view name) {
  for (store::Folder& f : *p.mutable_folders()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

const store::Folder* FindFolder(const store::Profile& p, std::string_view name) {
  for (const store::Folder& f : p.folders()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

// A new folder. Its id is drawn at random (store/profile_merge.h: the two
// sides of a partition must not give one id to different folders). Its
// UIDVALIDITY is the time in seconds, but never one this user had before: a
// folder deleted and created again within a second must not look like the
// old one to a client.
store::Folder* AddFolder(store::Profile& p, const std::string& name, std::string special_use,
                         uint32_t now_s, bool subscribed, uint64_t seed) {
  const uint32_t id = store::NewFolderId(p, Hash64(name) ^ seed);
  const uint32_t uidvalidity = std::max(now_s, p.last_uidvalidity() + 1);
  store::Folder* f = p.add_folders();
  f->set_id(id);
  f->set_name(name);
  f->set_uidvalidity(uidvalidity);
  f->set_special_use(std::move(special_use));
  f->set_subscribed(subscribed);
  p.set_last_uidvalidity(uidvalidity);
  return f;
}

}  // namespace

LocalManager::LocalManager(const LocalManagerOptions& options, ProfileWriter& writer, Hlc& hlc)
    : options_(options),
      writer_(writer),
      hlc_(hlc),
      state_(options.self, options.buckets, options.soft_state) {}

void LocalManager::InstallView(const cluster::View& view) {
  {
    std::lock_guard lock(mu_);
    if (view.epoch > state_.view().epoch) state_.InstallView(view);
  }
  rebuilt_.Notify();
}

void LocalManager::ApplyRebuild(NodeId from, const RebuildChunk& chunk) {
  std::function<void()> learned;
  {
    std::lock_guard lock(mu_);
    state_.ApplyRebuild(from, chunk);
    if (from != options_.self && !population_known_.exchange(true)) learned = std::move(learned_);
  }
  rebuilt_.Notify();
  if (learned) learned();
}

void LocalManager::SetPopulationKnown(bool known, std::function<void()> learned) {
  std::lock_guard lock(mu_);
  population_known_ = known;
  learned_ = std::move(learned);
}

Status LocalManager::LookupErrorOf(SoftState::State state, const std::string& user) const {
  if (state == SoftState::State::kNotFound && !population_known_.load()) {
    return Status::Unavailable(
        "this node has not met its cluster since its data directory was "
        "created: it cannot tell whether " +
        user + " exists");
  }
  return ErrorOf(state, user);
}

void LocalManager::OfferProfile(const store::Profile& profile) {
  std::lock_guard lock(mu_);
  state_.PutProfile(profile, state_.EntryEpochOf(profile.user()));
}

Status LocalManager::ErrorOf(SoftState::State state, const std::string& user) {
  switch (state) {
    case SoftState::State::kFound:
      return Status::Ok();
    case SoftState::State::kNotFound:
      return Status::NotFound("no such user: " + user);
    case SoftState::State::kRebuilding:
      return Status::Unavailable("the user's bucket is still being rebuilt");
    case SoftState::State::kNotManager:
      break;
  }
  return Status::Aborted("not the manager of this user's bucket in the caller's view");
}

asio::awaitable<LocalManager::Found> LocalManager::FindWaiting(const std::string& user,
                                                               uint64_t entry_epoch) {
  const auto deadline = std::chrono::steady_clock::now() + options_.rebuild_wait;
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(mu_);
      SoftState::Lookup l = state_.Find(user, entry_epoch);
      if (l.state != SoftState::State::kRebuilding ||
          std::chrono::steady_clock::now() >= deadline) {
        Found f{l.state, std::nullopt, std::move(l.mail_map)};
        if (l.profile) f.profile = *l.profile;
        co_return f;
      }
      seen = rebuilt_.generation();  // under mu_: a change after the check moves it
    }
    co_await rebuilt_.WaitChange(seen, std::chrono::ceil<std::chrono::milliseconds>(
                                           deadline - std::chrono::steady_clock::now()));
  }
}

asio::awaitable<Result<UserInfo>> LocalManager::LookupUser(std::string user, uint64_t entry_epoch,
                                                           bool with_credentials) {
  Found f = co_await FindWaiting(user, entry_epoch);
  if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
  UserInfo info{user, std::move(f.mail_map), {}, {}};
  if (with_credentials) {
    info.password_hash = f.profile->password_hash();
    info.scram_sha256 = f.profile->scram_sha256();
  }
  co_return info;
}

asio::awaitable<Status> LocalManager::UpdateMailMap(std::string user, NodeId node, bool add,
                                                    uint64_t stamp, uint64_t entry_epoch) {
  std::lock_guard lock(mu_);
  bool ok = add ? state_.MailMapAdd(user, node, stamp, entry_epoch)
                : state_.MailMapRemove(user, node, stamp, entry_epoch);
  co_return ok ? Status::Ok() : ErrorOf(SoftState::State::kNotManager, user);
}

asio::awaitable<Status> LocalManager::ManageUser(UserOpKind kind, std::string user,
                                                 PasswordSecrets secrets, uint64_t entry_epoch) {
  Found f = co_await FindWaiting(user, entry_epoch);
  if (kind == UserOpKind::kCreate && f.state == SoftState::State::kFound) {
    co_return Status::AlreadyExists("user exists: " + user);
  }
  const SoftState::State want =
      kind == UserOpKind::kCreate ? SoftState::State::kNotFound : SoftState::State::kFound;
  if (f.state != want) co_return ErrorOf(f.state, user);
  {
    // One change of a user at a time: the check above and the write below
    // must not interleave with another create or update of the same user.
    std::lock_guard lock(mu_);
    if (!changing_.insert(user).second) {
      co_return Status::Unavailable("another change of " + user + " is in progress");
    }
  }
  store::Profile p;
  if (f.profile) p = *f.profile;
  p.set_version(1);
  p.set_user(user);
  const uint64_t now = hlc_.Now();
  p.set_hlc(std::max<uint64_t>(p.hlc() + 1, now));
  p.clear_replicas();
  switch (kind) {
    case UserOpKind::kCreate: {
      p.set_password_hash(secrets.password_hash);
      p.set_scram_sha256(secrets.scram_sha256);
      p.set_created_ms(Hlc::PhysicalMs(now));
      p.clear_folders();
      store::Folder* inbox = p.add_folders();
      inbox->set_id(store::kInboxFolder);
      inbox->set_name("INBOX");
      inbox->set_uidvalidity(static_cast<uint32_t>(Hlc::PhysicalMs(now) / 1000));
      inbox->set_subscribed(true);
      p.set_last_uidvalidity(std::max(p.last_uidvalidity(), inbox->uidvalidity()));
      // The special-use folders a client expects (RFC 6154).
      const uint32_t uidvalidity = inbox->uidvalidity();
      for (const char* name : {"Drafts", "Sent", "Trash", "Junk"}) {
        AddFolder(p, name, std::string("\\") + name, uidvalidity, true, FolderSeed(now));
      }
      p.set_tombstone(false);
      break;
    }
    case UserOpKind::kSetPassword:
      // The old SCRAM secrets are of the old password: replaced, or cleared.
      p.set_password_hash(secrets.password_hash);
      p.set_scram_sha256(secrets.scram_sha256);
      break;
    case UserOpKind::kDelete:
      // A tombstone, so that a replica that missed the delete cannot bring
      // the user back.
      p.set_tombstone(true);
      p.clear_password_hash();
      p.clear_scram_sha256();
      break;
  }
  Status st = co_await writer_.Write(p);
  std::lock_guard lock(mu_);
  changing_.erase(user);
  if (!st.ok()) co_return st;
  if (!state_.PutProfile(p, entry_epoch)) {
    // The bucket moved while we wrote; the new manager learns the profile
    // from the replicas' announcements.
    co_return Status::Unavailable("the user's bucket moved during the change; retry");
  }
  if (kind != UserOpKind::kSetPassword) {
    // The UIDs left in a block of the old incarnation are not reserved in
    // the new profile: a later manager would hand them out again.
    uids_.erase(uids_.lower_bound({user, 0}), uids_.upper_bound({user, UINT32_MAX}));
  }
  co_return Status::Ok();
}

asio::awaitable<bool> LocalManager::BeginChange(const std::string& user,
                                                std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(mu_);
      if (changing_.insert(user).second) co_return true;
      seen = change_ended_.generation();  // under mu_: EndChange erases under it first
    }
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return false;
    co_await change_ended_.WaitChange(seen, left);
  }
}

void LocalManager::EndChange(const std::string& user) {
  {
    std::lock_guard lock(mu_);
    changing_.erase(user);
  }
  change_ended_.Notify();
}

uint32_t LocalManager::UidNextLocked(const std::string& user, const store::Folder& folder,
                                     uint64_t epoch) {
  auto it = uids_.find({user, folder.id()});
  if (it != uids_.end() && it->second.entry_epoch == epoch) return it->second.next;
  // A new manager (or a new assignment) continues after the reserved block:
  // the UIDs below may have been handed out by the previous one.
  return std::max<uint32_t>(1, folder.uid_reserved());
}

uint64_t LocalManager::FolderSeed(uint64_t now) const {
  return Hash64(std::to_string(options_.self) + "/" + std::to_string(now));
}

std::chrono::steady_clock::time_point LocalManager::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

void LocalManager::ExpireLocked(UidBlock& block) {
  const auto now = Now();
  while (!block.in_flight.empty() && block.in_flight.front().expires <= now) {
    block.in_flight.pop_front();
  }
}

void LocalManager::HandedOutLocked(const std::string& user, uint32_t folder, uint64_t epoch,
                                   uint32_t next, uint32_t limit, uint32_t recent, UidRange uids) {
  UidBlock& b = uids_[{user, folder}];
  if (b.entry_epoch != epoch) b = UidBlock{};  // UIDs of an older assignment are not tracked
  b.entry_epoch = epoch;
  b.next = next;
  b.limit = limit;
  // A claim made while a reservation was being written stands: `recent`
  // was read before the write.
  b.recent = std::max(b.recent, recent);
  ExpireLocked(b);
  if (uids.count == 0) return;
  b.in_flight.push_back({uids, Now() + options_.uid_settle_window});
  while (b.in_flight.size() > options_.max_in_flight_per_folder) b.in_flight.pop_front();
}

void LocalManager::Release(UidBlock& block, UidRange gone) {
  // Takes [first, end) out of every range, which may split one in two.
  const uint64_t first = gone.first, end = first + gone.count;
  std::deque<InFlight> kept;
  for (const InFlight& r : block.in_flight) {
    const uint64_t a = r.uids.first, b = a + r.uids.count;
    if (b <= first || a >= end) {
      kept.push_back(r);
      continue;
    }
    if (a < first) kept.push_back({{r.uids.first, static_cast<uint32_t>(first - a)}, r.expires});
    if (b > end)
      kept.push_back({{static_cast<uint32_t>(end), static_cast<uint32_t>(b - end)}, r.expires});
  }
  block.in_flight = std::move(kept);
}

FolderState LocalManager::StateOf(const store::Profile& profile, std::vector<NodeId> mail_map,
                                  uint64_t epoch) {
  FolderState st;
  st.mail_map = std::move(mail_map);
  for (const store::Folder& f : profile.folders()) {
    const uint32_t next = UidNextLocked(profile.user(), f, epoch);
    auto it = uids_.find({profile.user(), f.id()});
    const bool valid = it != uids_.end() && it->second.entry_epoch == epoch;
    FolderStatus& status = st.folders.emplace_back(FolderStatus{f, next, next, {}});
    if (!valid) continue;
    status.recent_from = it->second.recent;
    ExpireLocked(it->second);
    for (const InFlight& x : it->second.in_flight) status.in_flight.push_back(x.uids);
  }
  std::sort(st.folders.begin(), st.folders.end(), [](const FolderStatus& a, const FolderStatus& b) {
    return a.folder.name() < b.folder.name();
  });
  return st;
}

asio::awaitable<Result<FolderState>> LocalManager::Folders(std::string user, FolderOp op,
                                                           uint64_t entry_epoch) {
  using Kind = FolderOp::Kind;
  const std::string name = CanonicalName(op.name);
  if (op.kind == Kind::kRead) {
    Found f = co_await FindWaiting(user, entry_epoch);
    if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
    std::lock_guard lock(mu_);
    co_return StateOf(*f.profile, std::move(f.mail_map), entry_epoch);
  }
  if (op.kind == Kind::kClaimRecent) {
    Found f = co_await FindWaiting(user, entry_epoch);
    if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
    std::lock_guard lock(mu_);
    const store::Profile& profile = *f.profile;
    const store::Folder* x = FindFolder(profile, name);
    if (!x) co_return Status::NotFound("no such folder: " + name);
    FolderState st = StateOf(profile, std::move(f.mail_map), entry_epoch);
    st.folder_id = x->id();
    st.uidvalidity = x->uidvalidity();
    auto it = uids_.find({user, x->id()});
    if (it != uids_.end() && it->second.entry_epoch == entry_epoch) {
      UidBlock& b = it->second;
      const uint32_t to = op.below == 0 ? b.next : std::min(b.next, op.below);
      b.recent = std::max(b.recent, to);  // the caller's reply keeps the old horizon
    }
    co_return st;
  }
  if (op.kind == Kind::kReleaseUids) {
    if (op.uids.size() > kMaxReleaseRanges) co_return Status::InvalidArgument("too many UIDs");
    Found f = co_await FindWaiting(user, entry_epoch);
    if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
    std::lock_guard lock(mu_);
    auto it = uids_.find({user, op.folder_id});
    if (it != uids_.end() && it->second.entry_epoch == entry_epoch) {
      for (const UidRange& gone : op.uids) Release(it->second, gone);
    }
    co_return StateOf(*f.profile, std::move(f.mail_map), entry_epoch);
  }
  if (op.kind == Kind::kAllocateUids &&
      ((op.count == 0 && op.min_uid == 0) || op.count > kUidBlock)) {
    co_return Status::InvalidArgument("bad UID count");
  }
  if (op.kind == Kind::kAllocateUids) {
    // The common case of a delivery: UIDs from the block already reserved,
    // no profile write, no queueing behind other changes.
    Found f = co_await FindWaiting(user, entry_epoch);
    if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
    std::lock_guard lock(mu_);
    const store::Profile& profile = *f.profile;
    const store::Folder* x = FindFolder(profile, name);
    if (!x) co_return Status::NotFound("no such folder: " + name);
    auto it = uids_.find({user, x->id()});
    if (!changing_.count(user) && it != uids_.end() && it->second.entry_epoch == entry_epoch &&
        it->second.next >= op.min_uid && it->second.next + op.count <= it->second.limit) {
      const uint32_t first = it->second.next;
      HandedOutLocked(user, x->id(), entry_epoch, first + op.count, it->second.limit,
                      it->second.recent, {first, op.count});
      FolderState st = StateOf(profile, std::move(f.mail_map), entry_epoch);
      st.folder_id = x->id();
      st.uidvalidity = x->uidvalidity();
      st.first_uid = first;
      co_return st;
    }
  }
  // Concurrent deliveries to one user queue here briefly: each change reads
  // the profile the previous one wrote.
  if (!co_await BeginChange(user, std::chrono::milliseconds(2000))) {
    co_return Status::Unavailable("another change of " + user + " is in progress");
  }
  struct Guard {
    LocalManager* m;
    const std::string& u;
    ~Guard() { m->EndChange(u); }
  } guard{this, user};
  Found f = co_await FindWaiting(user, entry_epoch);
  if (f.state != SoftState::State::kFound) co_return LookupErrorOf(f.state, user);
  store::Profile p = std::move(*f.profile);
  const uint64_t now = hlc_.Now();
  const uint32_t now_s = static_cast<uint32_t>(Hlc::PhysicalMs(now) / 1000);
  bool write = true;
  uint32_t first_uid = 0;
  uint32_t new_next = 0, new_limit = 0, new_recent = 1;
  std::string named = name;
  switch (op.kind) {
    case Kind::kRead:
    case Kind::kClaimRecent:
    case Kind::kReleaseUids:
      break;
    case Kind::kCreate: {
      if (!ValidName(name)) co_return Status::InvalidArgument("bad folder name");
      if (FindFolder(p, name)) co_return Status::AlreadyExists("folder exists: " + name);
      if (static_cast<size_t>(p.folders_size()) >= kMaxFolders) {
        co_return Status::ResourceExhausted("too many folders");
      }
      // Superior levels are created too (RFC 3501 §6.3.3).
      for (size_t slash = name.find('/'); slash != std::string::npos;
           slash = name.find('/', slash + 1)) {
        const std::string parent = name.substr(0, slash);
        if (!FindFolder(p, parent)) AddFolder(p, parent, "", now_s, false, FolderSeed(now));
      }
      AddFolder(p, name, op.special_use, now_s, false, FolderSeed(now));
      break;
    }
    case Kind::kDelete: {
      if (name == "INBOX") co_return Status::FailedPrecondition("the inbox cannot be deleted");
      auto* folders = p.mutable_folders();
      auto it = std::find_if(folders->begin(), folders->end(),
                             [&](const store::Folder& x) { return x.name() == name; });
      if (it == folders->end()) co_return Status::NotFound("no such folder: " + name);
      store::MarkFolderDeleted(p, it->id());
      folders->erase(it);
      break;
    }
    case Kind::kRename: {
      const std::string to = CanonicalName(op.to);
      // Renaming INBOX moves its mail instead (node/backends.cc).
      if (name == "INBOX") co_return Status::FailedPrecondition("the inbox cannot be renamed");
      if (!ValidName(to) || to == "INBOX" || to.starts_with("INBOX/") ||
          to.starts_with(name + "/")) {
        co_return Status::InvalidArgument("bad folder name");
      }
      if (!FindFolder(p, name)) co_return Status::NotFound("no such folder: " + name);
      if (FindFolder(p, to)) co_return Status::AlreadyExists("folder exists: " + to);
      // The children move along; none may land on an existing name (a child
      // can outlive its deleted parent).
      for (const store::Folder& x : p.folders()) {
        if (!x.name().starts_with(name + "/")) continue;
        const std::string moved = to + x.name().substr(name.size());
        if (FindFolder(p, moved)) co_return Status::AlreadyExists("folder exists: " + moved);
      }
      for (store::Folder& x : *p.mutable_folders()) {
        if (x.name() == name) {
          x.set_name(to);
        } else if (x.name().starts_with(name + "/")) {
          x.set_name(to + x.name().substr(name.size()));
        }
      }
      for (size_t slash = to.find('/'); slash != std::string::npos;
           slash = to.find('/', slash + 1)) {
        const std::string parent = to.substr(0, slash);
        if (!FindFolder(p, parent)) AddFolder(p, parent, "", now_s, false, FolderSeed(now));
      }
      named = to;
      break;
    }
    case Kind::kSubscribe:
    case Kind::kUnsubscribe: {
      store::Folder* x = FindFolder(p, name);
      const bool want = op.kind == Kind::kSubscribe;
      write = x && x->subscribed() != want;
      if (write) x->set_subscribed(want);
      break;
    }
    case Kind::kAllocateUids: {
      store::Folder* x = FindFolder(p, name);
      if (!x) co_return Status::NotFound("no such folder: " + name);
      std::lock_guard lock(mu_);
      auto it = uids_.find({user, x->id()});
      UidBlock b;
      if (it != uids_.end() && it->second.entry_epoch == entry_epoch) {
        b = it->second;
      } else {
        b.entry_epoch = entry_epoch;
        b.next = b.limit = b.recent = std::max<uint32_t>(1, x->uid_reserved());
      }
      // UIDs at or above min_uid are in the folder already (handed out by
      // another manager during a partition): continue after them.
      if (op.min_uid > 0xFFFFFFFFu - kUidBlock) {
        co_return Status::ResourceExhausted("the folder's UIDs are used up");
      }
      b.next = std::max(b.next, op.min_uid);
      if (b.next > 0xFFFFFFFFu - op.count - kUidBlock) {
        co_return Status::ResourceExhausted("the folder's UIDs are used up");
      }
      write = b.next + op.count > b.limit;
      if (write) {
        b.limit = std::max({b.limit, x->uid_reserved(), b.next}) + kUidBlock;
        x->set_uid_reserved(b.limit);
      }
      first_uid = b.next;
      new_next = b.next + op.count;
      new_limit = b.limit;
      new_recent = b.recent;
      if (!write) {
        // Inside the reserved block: no write needed.
        HandedOutLocked(user, x->id(), entry_epoch, new_next, new_limit, b.recent,
                        {first_uid, op.count});
        FolderState st = StateOf(p, std::move(f.mail_map), entry_epoch);
        st.folder_id = x->id();
        st.uidvalidity = x->uidvalidity();
        st.first_uid = first_uid;
        co_return st;
      }
      break;
    }
  }
  if (write) {
    p.set_hlc(std::max<uint64_t>(p.hlc() + 1, now));
    p.clear_replicas();
    Status st = co_await writer_.Write(p);
    if (!st.ok()) co_return st;
  }
  std::lock_guard lock(mu_);
  if (write && !state_.PutProfile(p, entry_epoch)) {
    co_return Status::Unavailable("the user's bucket moved during the change; retry");
  }
  store::Folder* x = FindFolder(p, named);
  if (op.kind == Kind::kAllocateUids) {
    HandedOutLocked(user, x->id(), entry_epoch, new_next, new_limit, new_recent,
                    {first_uid, op.count});
  }
  FolderState st = StateOf(p, std::move(f.mail_map), entry_epoch);
  if (x) {
    st.folder_id = x->id();
    st.uidvalidity = x->uidvalidity();
  }
  st.first_uid = first_uid;
  co_return st;
}

asio::awaitable<Result<std::vector<std::string>>> LocalManager::ListUsers() {
  std::lock_guard lock(mu_);
  co_return state_.Users();
}

LocalManager::Stats LocalManager::stats() {
  std::lock_guard lock(mu_);
  return {state_.user_count(), state_.buckets_managed(), state_.buckets_rebuilding(),
          state_.view().epoch};
}

bool LocalManager::Ready() {
  std::lock_guard lock(mu_);
  return state_.view().epoch != 0 && state_.buckets_rebuilding() == 0;
}

}  // namespace porcupine::manager
