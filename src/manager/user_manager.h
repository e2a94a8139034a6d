// The user manager role (DESIGN.md §6): for the buckets a node manages it
// holds each user's soft state — profile cache and mail map — and answers
// lookups and authentication. Callers reach the manager of a user through
// ManagerDirectory, so the same calls work locally and (cluster issue) over RPC.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/user_map.h"
#include "core/status.h"

namespace porcupine::manager {

using cluster::NodeId;

struct UserInfo {
  std::string user;              // canonical address
  std::vector<NodeId> mail_map;  // nodes holding fragments of the user's mail, sorted
};

class UserManager {
 public:
  virtual ~UserManager() = default;
  // NotFound when the user does not exist; Unavailable when the manager is
  // unreachable or its bucket is still being rebuilt past the wait bound.
  virtual asio::awaitable<Result<UserInfo>> LookupUser(std::string user) = 0;
  // OK, or PermissionDenied for a wrong password or unknown user (the two are
  // indistinguishable to the caller on purpose).
  virtual asio::awaitable<Status> Authenticate(std::string user, std::string password) = 0;
  // Records that `node` holds (or no longer holds) fragments of `user`'s mail.
  virtual asio::awaitable<Status> MailMapAdd(std::string user, NodeId node) = 0;
  virtual asio::awaitable<Status> MailMapRemove(std::string user, NodeId node) = 0;
};

// Finds the manager object for a node (local or remote).
class ManagerDirectory {
 public:
  virtual ~ManagerDirectory() = default;
  // nullptr when the node is unknown or unreachable.
  virtual UserManager* ManagerOn(NodeId node) = 0;
};

}  // namespace porcupine::manager
