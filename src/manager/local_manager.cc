#include "manager/local_manager.h"

#include <sodium.h>

#include <algorithm>

#include "core/async.h"
#include "core/hash.h"
#include "core/hlc.h"

namespace porcupine::manager {
namespace {

bool Live(const store::Profile& p) { return !p.tombstone(); }

}  // namespace

LocalManager::LocalManager(const LocalManagerOptions& options, store::Store& store,
                           asio::any_io_executor cpu)
    : options_(options), store_(store), cpu_(std::move(cpu)) {
  if (sodium_init() < 0) cache_key_.fill(0);
  randombytes_buf(cache_key_.data(), cache_key_.size());
}

Status LocalManager::Rebuild() {
  std::unordered_map<std::string, Entry> users;
  PORCUPINE_RETURN_IF_ERROR(store_.ScanProfiles([&](store::Bucket, const store::Profile& p) {
    if (!Live(p)) return;
    Entry& e = users[p.user()];
    e.profile = p;
    e.has_profile = true;
  }));
  const uint32_t last = options_.buckets - 1;
  PORCUPINE_RETURN_IF_ERROR(store_.ScanUsers(0, static_cast<store::Bucket>(last),
                                             [&](store::Bucket, const std::string& user) {
                                               auto it = users.find(user);
                                               if (it != users.end())
                                                 it->second.mail_map.insert(options_.self);
                                             }));
  std::lock_guard lock(mu_);
  users_ = std::move(users);
  logins_.clear();
  return Status::Ok();
}

asio::awaitable<Result<UserInfo>> LocalManager::LookupUser(std::string user) {
  std::lock_guard lock(mu_);
  auto it = users_.find(user);
  if (it == users_.end() || !it->second.has_profile) {
    co_return Status::NotFound("no such user: " + user);
  }
  UserInfo info{user, {it->second.mail_map.begin(), it->second.mail_map.end()}};
  co_return info;
}

LocalManager::Digest LocalManager::PasswordDigest(const std::string& user,
                                                  const std::string& password) const {
  Digest d{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, cache_key_.data(), cache_key_.size(), d.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(user.data()), user.size());
  const unsigned char zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(password.data()),
                            password.size());
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

bool LocalManager::CachedLogin(const std::string& user, const Digest& d) {
  std::lock_guard lock(mu_);
  auto it = logins_.find(user);
  return it != logins_.end() && sodium_memcmp(it->second.data(), d.data(), d.size()) == 0;
}

void LocalManager::ForgetLogin(const std::string& user) {
  std::lock_guard lock(mu_);
  logins_.erase(user);
}

asio::awaitable<Status> LocalManager::Authenticate(std::string user, std::string password) {
  const Status denied = Status::PermissionDenied("invalid credentials");
  std::string hash;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it != users_.end() && it->second.has_profile) hash = it->second.profile.password_hash();
  }
  if (hash.empty()) co_return denied;
  Digest digest = PasswordDigest(user, password);
  if (options_.auth_cache_entries > 0 && CachedLogin(user, digest)) co_return Status::Ok();
  auto verify = [hash, password] { return VerifyPassword(hash, password); };
  bool ok = co_await RunOn(cpu_, std::move(verify));
  if (!ok) co_return denied;
  if (options_.auth_cache_entries > 0) {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    // Remember only if the password was not changed while we verified.
    if (it != users_.end() && it->second.profile.password_hash() == hash) {
      if (logins_.size() >= options_.auth_cache_entries) logins_.clear();
      logins_[user] = digest;
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Status> LocalManager::MailMapAdd(std::string user, NodeId node) {
  std::lock_guard lock(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) co_return Status::NotFound("no such user: " + user);
  it->second.mail_map.insert(node);
  co_return Status::Ok();
}

asio::awaitable<Status> LocalManager::MailMapRemove(std::string user, NodeId node) {
  std::lock_guard lock(mu_);
  auto it = users_.find(user);
  if (it != users_.end()) it->second.mail_map.erase(node);
  co_return Status::Ok();
}

asio::awaitable<Status> LocalManager::CommitProfile(const store::Profile& profile) {
  store::Batch batch;
  batch.PutProfile(BucketOf(profile.user(), options_.buckets), profile);
  auto submit = [this, b = std::move(batch)](auto done) mutable {
    store_.Submit(std::move(b), done);
  };
  co_return co_await AwaitCallback<Status>(std::move(submit));
}

asio::awaitable<Status> LocalManager::CreateUser(std::string user, std::string password) {
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it != users_.end() && it->second.has_profile) {
      co_return Status::AlreadyExists("user exists: " + user);
    }
  }
  PasswordCost cost = options_.password_cost;
  auto work = [password, cost] { return HashPassword(password, cost); };
  Result<std::string> hash = co_await RunOn(cpu_, std::move(work));
  if (!hash.ok()) co_return hash.status();
  store::Profile p;
  p.set_version(1);
  p.set_user(user);
  p.set_password_hash(*hash);
  p.set_created_ms(SystemNowMs());
  p.set_hlc(Hlc::Make(SystemNowMs(), 0));
  p.add_replicas(options_.self);
  store::Folder* inbox = p.add_folders();
  inbox->set_id(store::kInboxFolder);
  inbox->set_name("INBOX");
  inbox->set_uidvalidity(static_cast<uint32_t>(SystemNowMs() / 1000));
  inbox->set_subscribed(true);
  {
    // Re-check under the lock: two concurrent creates of one user.
    std::lock_guard lock(mu_);
    Entry& e = users_[user];
    if (e.has_profile) co_return Status::AlreadyExists("user exists: " + user);
    e.profile = p;
    e.has_profile = true;
  }
  Status st = co_await CommitProfile(p);
  if (!st.ok()) {
    std::lock_guard lock(mu_);
    users_.erase(user);
  }
  co_return st;
}

asio::awaitable<Status> LocalManager::SetPassword(std::string user, std::string password) {
  PasswordCost cost = options_.password_cost;
  auto work = [password, cost] { return HashPassword(password, cost); };
  Result<std::string> hash = co_await RunOn(cpu_, std::move(work));
  if (!hash.ok()) co_return hash.status();
  store::Profile p;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it == users_.end() || !it->second.has_profile) {
      co_return Status::NotFound("no such user: " + user);
    }
    it->second.profile.set_password_hash(*hash);
    it->second.profile.set_hlc(
        std::max<uint64_t>(it->second.profile.hlc() + 1, Hlc::Make(SystemNowMs(), 0)));
    p = it->second.profile;
    logins_.erase(user);
  }
  co_return co_await CommitProfile(p);
}

asio::awaitable<Status> LocalManager::DeleteUser(std::string user) {
  store::Profile p;
  {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it == users_.end() || !it->second.has_profile) {
      co_return Status::NotFound("no such user: " + user);
    }
    p = it->second.profile;
    users_.erase(it);
    logins_.erase(user);
  }
  // A tombstoned profile, so a replica that missed the delete cannot bring
  // the user back (replication issue); the user's messages are removed by the
  // mail service before this call.
  p.set_tombstone(true);
  p.clear_password_hash();
  p.set_hlc(std::max<uint64_t>(p.hlc() + 1, Hlc::Make(SystemNowMs(), 0)));
  co_return co_await CommitProfile(p);
}

std::vector<std::string> LocalManager::ListUsers() {
  std::vector<std::string> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [user, e] : users_)
      if (e.has_profile) out.push_back(user);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t LocalManager::user_count() {
  std::lock_guard lock(mu_);
  return users_.size();
}

}  // namespace porcupine::manager
