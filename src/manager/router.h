// Reaching a user's manager (DESIGN.md §6 steps 1–2): the bucket's manager in
// the current view, called with the bucket's entry epoch, retried across view
// changes. When the caller and the manager disagree about the view (Aborted)
// or the manager cannot be reached (Unavailable), the router waits for the
// view to move on and tries again, for at most `retry_budget` in all; what is
// left after that goes back to the caller (SMTP 451, POP3 -ERR [SYS/TEMP]).
//
// Thread-safe.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "cluster/membership.h"
#include "manager/user_manager.h"

namespace porcupine::manager {

// The installed view, as the data path sees it.
class ViewSource {
 public:
  virtual ~ViewSource() = default;
  // Never null; epoch 0 until the first view is installed.
  virtual std::shared_ptr<const cluster::View> Current() const = 0;
  // Resumes when a view newer than `epoch` is installed, or after `timeout`.
  virtual asio::awaitable<void> WaitNewer(cluster::Epoch epoch,
                                          std::chrono::milliseconds timeout) = 0;
};

// The manager role on a given node: this node's LocalManager or an RPC stub.
class ManagerDirectory {
 public:
  virtual ~ManagerDirectory() = default;
  // nullptr when the node is not a member of the current view.
  virtual UserManager* ManagerOn(NodeId node) = 0;
};

struct RouterOptions {
  std::chrono::milliseconds retry_budget{3000};  // total time spent retrying one call
  std::chrono::milliseconds retry_pause{20};     // between retries while views disagree
};

class ManagerRouter {
 public:
  // views and managers must outlive the router.
  ManagerRouter(const RouterOptions& options, ViewSource& views, ManagerDirectory& managers);

  asio::awaitable<Result<UserInfo>> LookupUser(std::string user, bool with_credentials = false);
  asio::awaitable<Status> UpdateMailMap(std::string user, NodeId node, bool add, uint64_t stamp);
  asio::awaitable<Status> ManageUser(UserOpKind kind, std::string user, PasswordSecrets secrets);
  asio::awaitable<Result<FolderState>> Folders(std::string user, FolderOp op);
  // Every user of the cluster (the union over all members), sorted.
  // Unavailable when some member cannot answer.
  asio::awaitable<Result<std::vector<std::string>>> ListUsers();

 private:
  // Calls op(manager, entry_epoch) for the user's manager until it gives an
  // answer that is not a view disagreement, or the budget is spent.
  template <typename T>
  asio::awaitable<T> Route(const std::string& user,
                           std::function<asio::awaitable<T>(UserManager&, uint64_t)> op);

  const RouterOptions options_;
  ViewSource& views_;
  ManagerDirectory& managers_;
};

}  // namespace porcupine::manager
