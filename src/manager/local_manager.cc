#include "manager/local_manager.h"

#include <algorithm>

#include "core/hash.h"
#include "store/store.h"

namespace porcupine::manager {

LocalManager::LocalManager(const LocalManagerOptions& options, ProfileWriter& writer, Hlc& hlc)
    : options_(options),
      writer_(writer),
      hlc_(hlc),
      state_(options.self, options.buckets, options.soft_state) {}

void LocalManager::InstallView(const cluster::View& view) {
  std::lock_guard lock(mu_);
  if (view.epoch > state_.view().epoch) state_.InstallView(view);
}

void LocalManager::ApplyRebuild(NodeId from, const RebuildChunk& chunk) {
  std::lock_guard lock(mu_);
  state_.ApplyRebuild(from, chunk);
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
  std::optional<asio::steady_timer> timer;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      SoftState::Lookup l = state_.Find(user, entry_epoch);
      if (l.state != SoftState::State::kRebuilding ||
          std::chrono::steady_clock::now() >= deadline) {
        Found f{l.state, std::nullopt, std::move(l.mail_map)};
        if (l.profile) f.profile = *l.profile;
        co_return f;
      }
    }
    if (!timer) timer.emplace(co_await asio::this_coro::executor);
    timer->expires_after(std::chrono::milliseconds(10));
    co_await timer->async_wait(asio::use_awaitable);
  }
}

asio::awaitable<Result<UserInfo>> LocalManager::LookupUser(std::string user, uint64_t entry_epoch,
                                                           bool with_credentials) {
  Found f = co_await FindWaiting(user, entry_epoch);
  if (f.state != SoftState::State::kFound) co_return ErrorOf(f.state, user);
  UserInfo info{user, std::move(f.mail_map), {}};
  if (with_credentials) info.password_hash = f.profile->password_hash();
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
                                                 std::string password_hash, uint64_t entry_epoch) {
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
      p.set_password_hash(password_hash);
      p.set_created_ms(Hlc::PhysicalMs(now));
      p.clear_folders();
      store::Folder* inbox = p.add_folders();
      inbox->set_id(store::kInboxFolder);
      inbox->set_name("INBOX");
      inbox->set_uidvalidity(static_cast<uint32_t>(Hlc::PhysicalMs(now) / 1000));
      inbox->set_subscribed(true);
      p.set_tombstone(false);
      break;
    }
    case UserOpKind::kSetPassword:
      p.set_password_hash(password_hash);
      break;
    case UserOpKind::kDelete:
      // A tombstone, so that a replica that missed the delete cannot bring
      // the user back.
      p.set_tombstone(true);
      p.clear_password_hash();
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
  co_return Status::Ok();
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
