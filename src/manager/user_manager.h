// The user manager role (DESIGN.md §6): for the buckets a node manages it
// holds each user's soft state — profile and mail map — and answers lookups,
// applies mail-map updates and serializes changes to profiles. Callers reach
// the manager of a user through ManagerRouter (manager/router.h), which works
// the same whether the manager is this node or another (over RPC).
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
  std::vector<NodeId> mail_map;  // members holding fragments of the user's mail, sorted
  std::string password_hash;     // only when asked for (LookupUser with_credentials)
};

enum class UserOpKind { kCreate, kSetPassword, kDelete };

// One node's manager role, local or remote. Every call names the epoch of
// the user's bucket entry in the caller's view. Errors common to all calls:
// Aborted when this node does not manage the bucket under that assignment
// (the views differ: retry once they agree); Unavailable when the node cannot
// be reached, or the bucket is still being rebuilt past the wait bound.
class UserManager {
 public:
  virtual ~UserManager() = default;
  // NotFound when the user does not exist.
  virtual asio::awaitable<Result<UserInfo>> LookupUser(std::string user, uint64_t entry_epoch,
                                                       bool with_credentials) = 0;
  // Records that `node` holds (add) or no longer holds fragments of `user`'s
  // mail, as of the node's clock `stamp` (manager/soft_state.h).
  virtual asio::awaitable<Status> UpdateMailMap(std::string user, NodeId node, bool add,
                                                uint64_t stamp, uint64_t entry_epoch) = 0;
  // Creates the user (AlreadyExists if it exists), changes its password or
  // deletes it (NotFound if it does not exist). Durable on this node and
  // written to the other nodes' profile replicas when OK. `password_hash` is
  // a crypto_pwhash string (kCreate, kSetPassword).
  virtual asio::awaitable<Status> ManageUser(UserOpKind kind, std::string user,
                                             std::string password_hash, uint64_t entry_epoch) = 0;
  // The users of every bucket the node manages, sorted.
  virtual asio::awaitable<Result<std::vector<std::string>>> ListUsers() = 0;
};

}  // namespace porcupine::manager
