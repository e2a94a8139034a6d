// Anti-entropy and re-replication in the daemon (docs/replication.md).
//
// - Every `interval` (and soon after a member joins: restarted, wiped,
//   new), this node compares digests with every member of a larger id, per
//   slot (replication/anti_entropy.h), and for the slots that differ both
//   sides push each other what the other lacks or holds older (through the
//   replication manager, so the current version travels).
// - Re-replication: a message with fewer than R replicas (one was removed
//   for good by `cluster remove`, or the message was accepted where fewer
//   nodes were reachable — a partition, a node alone for a moment) gets new
//   ones: the lowest-id replica still in the view chooses the least loaded
//   members that lack the message, writes the new replica set as a newer
//   version and pushes it, until R copies exist again. The choice is made
//   again against the record as stored when it is written
//   (store::Batch::UpdateMessage), so a delete that lands after the scan
//   is never undone.
//
// Scans run on a thread of their own. Thread-safe.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <mutex>
#include <set>

#include "core/change_signal.h"
#include "node/cluster_runtime.h"
#include "node/directory.h"
#include "node/replication_runtime.h"
#include "replication/anti_entropy.h"
#include "replication/maintenance.h"
#include "store/store.h"

namespace porcupine::node {

struct AntiEntropyOptions {
  replication::UpkeepOptions upkeep;  // when rounds run, the tombstone grace
  int replication = 2;                // copies a message should have
};

class AntiEntropyRuntime {
 public:
  // Every reference must outlive this object.
  AntiEntropyRuntime(const AntiEntropyOptions& options, asio::io_context& io, store::Store& store,
                     ClusterRuntime& cluster, ClusterDirectory& directory,
                     ReplicationRuntime& replication, Hlc& hlc);
  ~AntiEntropyRuntime();

  void Start();
  void Stop();
  // A new view: a round soon when a member joined or a node was removed.
  void OnView(const cluster::View& view);

  // The RPC side (node/cluster_service.h).
  asio::awaitable<Result<std::vector<uint32_t>>> Differing(NodeId peer,
                                                           std::vector<uint64_t> digests);
  asio::awaitable<Result<std::vector<replication::Item>>> Compare(
      NodeId peer, uint32_t slot, std::vector<replication::Item> theirs);

  struct Stats {
    uint64_t rounds = 0;
    uint64_t slots_repaired = 0;  // slots that differed
    uint64_t pushed = 0;          // objects pushed by anti-entropy
    uint64_t rereplicated = 0;    // messages given a new replica after a removal
    uint64_t purged = 0;          // tombstones garbage-collected
  };
  Stats stats() const;

 private:
  asio::awaitable<void> Loop();
  asio::awaitable<void> Round();
  asio::awaitable<void> Exchange(cluster::Member peer);
  // Blocking scans (scan thread).
  Result<std::vector<uint64_t>> Digests(NodeId peer);
  Result<std::vector<replication::Item>> Items(NodeId peer, uint32_t slot);
  // Gives messages short of copies a new replica list (replication/rereplication.h).
  void Rereplicate(const cluster::View& view);
  // Purges tombstones older than the grace whose update reached every
  // replica (no log entry left here). docs/replication.md, "Deletes".
  void CollectTombstones();
  void PushTo(NodeId peer, const std::vector<replication::Item>& items);
  template <typename Fn>
  auto OnScanThread(Fn fn) -> asio::awaitable<decltype(fn())>;

  const AntiEntropyOptions options_;
  asio::io_context& io_;
  store::Store& store_;
  ClusterRuntime& cluster_;
  ClusterDirectory& directory_;
  ReplicationRuntime& replication_;
  Hlc& hlc_;
  const uint32_t buckets_;
  std::mutex schedule_mu_;
  replication::UpkeepSchedule schedule_;  // guarded by schedule_mu_
  ChangeSignal schedule_changed_;         // a view moved the schedule, or Stop
  asio::thread_pool scan_pool_{1};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> rounds_{0}, slots_{0}, pushed_{0}, rereplicated_{0}, purged_{0};
};

}  // namespace porcupine::node
