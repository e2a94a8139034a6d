#include "manager/router.h"

#include <algorithm>
#include <set>

#include "core/async.h"
#include "core/hash.h"

namespace porcupine::manager {
namespace {

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace

ManagerRouter::ManagerRouter(const RouterOptions& options, ViewSource& views,
                             ManagerDirectory& managers)
    : options_(options), views_(views), managers_(managers) {}

template <typename T>
asio::awaitable<T> ManagerRouter::Route(
    const std::string& user, std::function<asio::awaitable<T>(UserManager&, uint64_t)> op) {
  const auto deadline = std::chrono::steady_clock::now() + options_.retry_budget;
  Status last = Status::Unavailable("no view installed yet");
  for (;;) {
    std::shared_ptr<const cluster::View> view = views_.Current();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (view->epoch != 0) {
      const uint32_t bucket = BucketOf(user, view->user_map.buckets());
      UserManager* m = managers_.ManagerOn(view->user_map.ManagerOf(bucket));
      if (m) {
        T answer = co_await op(*m, view->user_map.EpochOf(bucket));
        last = StatusOf(answer);
        // Manager calls are idempotent: an unknown outcome is retried too.
        const Code c = last.code();
        if (c != Code::kAborted && c != Code::kUnavailable && c != Code::kUnknownOutcome) {
          co_return answer;
        }
        left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) co_return answer;
      }
    }
    if (left.count() <= 0) co_return T(last);
    // The views disagree or the manager is away: a new view settles both.
    // Aborted may also mean the manager has not installed our view yet, so
    // look again after a short pause even if ours does not change.
    auto pause = last.code() == Code::kAborted ? std::min(left, options_.retry_pause) : left;
    co_await views_.WaitNewer(view->epoch, pause);
  }
}

asio::awaitable<Result<UserInfo>> ManagerRouter::LookupUser(std::string user,
                                                            bool with_credentials) {
  auto op = [user, with_credentials](UserManager& m,
                                     uint64_t e) -> asio::awaitable<Result<UserInfo>> {
    return m.LookupUser(user, e, with_credentials);
  };
  co_return co_await Route<Result<UserInfo>>(user, std::move(op));
}

asio::awaitable<Status> ManagerRouter::UpdateMailMap(std::string user, NodeId node, bool add,
                                                     uint64_t stamp) {
  auto op = [user, node, add, stamp](UserManager& m, uint64_t e) -> asio::awaitable<Status> {
    return m.UpdateMailMap(user, node, add, stamp, e);
  };
  co_return co_await Route<Status>(user, std::move(op));
}

asio::awaitable<Status> ManagerRouter::ManageUser(UserOpKind kind, std::string user,
                                                  PasswordSecrets secrets) {
  auto op = [kind, user, secrets](UserManager& m, uint64_t e) -> asio::awaitable<Status> {
    return m.ManageUser(kind, user, secrets, e);
  };
  co_return co_await Route<Status>(user, std::move(op));
}

asio::awaitable<Result<FolderState>> ManagerRouter::Folders(std::string user, FolderOp op) {
  auto call = [user, op](UserManager& m, uint64_t e) -> asio::awaitable<Result<FolderState>> {
    return m.Folders(user, op, e);
  };
  co_return co_await Route<Result<FolderState>>(user, std::move(call));
}

asio::awaitable<Result<std::vector<std::string>>> ManagerRouter::ListUsers() {
  std::shared_ptr<const cluster::View> view = views_.Current();
  if (view->epoch == 0) co_return Status::Unavailable("no view installed yet");
  std::vector<asio::awaitable<Result<std::vector<std::string>>>> calls;
  for (const cluster::Member& member : view->members) {
    UserManager* m = managers_.ManagerOn(member.id);
    if (!m) co_return Status::Unavailable("member " + member.name + " unknown");
    calls.push_back(m->ListUsers());
  }
  std::vector<Result<std::vector<std::string>>> parts = co_await WhenAll(std::move(calls));
  std::set<std::string> all;
  for (auto& part : parts) {
    if (!part.ok()) co_return part.status();
    all.insert(part->begin(), part->end());
  }
  co_return std::vector<std::string>(all.begin(), all.end());
}

}  // namespace porcupine::manager
