// Where the writers of replicated objects (mail/fragments.h for messages,
// node/directory.h for profiles) hand their updates, after the object and its
// log entry are durable in one batch.
#pragma once

#include <asio.hpp>
#include <vector>

#include "replication/replicator.h"

namespace porcupine::replication {

struct Update {
  Entry entry;
  // The user's mail map as the proxy saw it: tells each replica whether it
  // must announce itself to the manager (not persisted; retries announce).
  std::vector<NodeId> mail_map;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Registers the updates, pushes them to their targets now and waits (each
  // push bounded by the RPC deadline) for the answers. Returns, per update,
  // how many targets acknowledged; the rest is retried in the background.
  virtual asio::awaitable<std::vector<size_t>> Replicate(std::vector<Update> updates) = 0;
  // Registers a durable entry without pushing it now (a takeover entry:
  // pushed only if its coordinator does not retire it in time).
  virtual void Track(Entry entry) = 0;
};

}  // namespace porcupine::replication
