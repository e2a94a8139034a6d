// Fragments: the part of users' mail stored on one node (DESIGN.md §2). The
// mail flows reach a node's fragments through this interface, locally or
// (cluster issue) over RPC.
#pragma once

#include <asio.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cluster/user_map.h"
#include "core/hlc.h"
#include "core/status.h"
#include "store/store.h"

namespace porcupine::mail {

using cluster::NodeId;

// One message for one user, as handed to a fragment node.
struct NewMessage {
  std::string user;
  store::MessageMeta meta;
};

class FragmentStore {
 public:
  virtual ~FragmentStore() = default;
  // Durably stores every message (one shared body) in one commit.
  virtual asio::awaitable<Status> Store(std::vector<NewMessage> messages,
                                        std::shared_ptr<const std::string> body) = 0;
  // The user's live INBOX messages held here, ordered by message id.
  virtual asio::awaitable<Result<std::vector<store::MessageMeta>>> List(std::string user) = 0;
  virtual asio::awaitable<Result<std::string>> Fetch(std::string user, store::MessageId id) = 0;
  // Durably tombstones the listed messages held here; ids not held are ignored.
  virtual asio::awaitable<Status> Delete(std::string user, std::vector<store::MessageId> ids) = 0;
  // Pending disk-bound operations (load).
  virtual uint64_t Load() const = 0;
};

// Finds the fragment store of a node and the live nodes of the view.
class NodeDirectory {
 public:
  virtual ~NodeDirectory() = default;
  virtual NodeId self() const = 0;
  virtual std::vector<NodeId> LiveNodes() const = 0;  // sorted
  // nullptr when the node is unknown or down.
  virtual FragmentStore* FragmentsOn(NodeId node) = 0;
};

// Fragments in this node's own store.
class LocalFragments : public FragmentStore {
 public:
  // hlc stamps tombstones. store and hlc must outlive this object.
  LocalFragments(store::Store& store, Hlc& hlc, uint32_t buckets)
      : store_(store), hlc_(hlc), buckets_(buckets) {}

  asio::awaitable<Status> Store(std::vector<NewMessage> messages,
                                std::shared_ptr<const std::string> body) override;
  asio::awaitable<Result<std::vector<store::MessageMeta>>> List(std::string user) override;
  asio::awaitable<Result<std::string>> Fetch(std::string user, store::MessageId id) override;
  asio::awaitable<Status> Delete(std::string user, std::vector<store::MessageId> ids) override;
  uint64_t Load() const override { return store_.pending(); }

 private:
  store::Store& store_;
  Hlc& hlc_;
  uint32_t buckets_;
};

}  // namespace porcupine::mail
