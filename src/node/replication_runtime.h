// The daemon's replication manager (DESIGN.md §6, docs/replication.md): it
// drives replication::Replicator with the real clock, pushes the current
// version of each object from the store to its targets over RPC, retries with
// backoff in the background, deletes log entries that retired, tells replicas
// to drop their takeover copies, and reports the backlog for metrics.
//
// Thread-safe.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <map>
#include <mutex>

#include "node/cluster_runtime.h"
#include "node/directory.h"
#include "replication/replicator.h"
#include "replication/sink.h"
#include "store/store.h"

namespace porcupine::node {

struct ReplicationRuntimeOptions {
  replication::ReplicatorOptions core;
  std::chrono::milliseconds tick{100};  // background retries are looked at this often
  size_t max_in_flight = 64;            // background pushes at once
};

class ReplicationRuntime : public replication::Sink {
 public:
  // Every reference must outlive this object.
  ReplicationRuntime(const ReplicationRuntimeOptions& options, asio::io_context& io,
                     store::Store& store, ClusterRuntime& cluster, ClusterDirectory& directory);
  ~ReplicationRuntime() override;

  // Loads the unretired entries of the log and starts the background pushes.
  Status Start();
  void Stop();

  // A new view (from the cluster runtime).
  void OnView(const cluster::View& view);
  // A coordinator retired these updates: drop our takeover copies.
  void OnRetire(const std::vector<std::pair<replication::ObjectRef, uint64_t>>& objects);

  // replication::Sink
  asio::awaitable<std::vector<size_t>> Replicate(std::vector<replication::Update> updates) override;
  void Track(replication::Entry entry) override;

  // True while an update of the object waits for a target.
  bool Pending(const replication::ObjectRef& object);

  struct Stats {
    size_t entries = 0;  // unretired updates (objects not yet on every replica)
    std::map<NodeId, replication::Replicator::Backlog> backlog;
    uint64_t pushes = 0;
    uint64_t push_failures = 0;
  };
  Stats stats();

 private:
  int64_t NowMs() const;
  asio::awaitable<void> Pump();
  // Sends the object's current version; true when the target acknowledged.
  asio::awaitable<bool> PushOne(replication::Push push, bool in_map);
  void Retired(const replication::ObjectRef& object, uint64_t hlc, const std::vector<NodeId>& told);

  const ReplicationRuntimeOptions options_;
  asio::io_context& io_;
  store::Store& store_;
  ClusterRuntime& cluster_;
  ClusterDirectory& directory_;
  const uint32_t buckets_;
  std::atomic<bool> stopped_{false};
  std::atomic<size_t> in_flight_{0};
  std::atomic<uint64_t> pushes_{0};
  std::atomic<uint64_t> push_failures_{0};

  std::mutex mu_;
  replication::Replicator replicator_;                       // guarded by mu_
  std::map<replication::ObjectRef, std::set<NodeId>> told_;  // R >= 3: nodes given takeover copies
};

}  // namespace porcupine::node
