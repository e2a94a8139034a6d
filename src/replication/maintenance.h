// The background upkeep of replicas (docs/replication.md): when a round of
// anti-entropy, re-replication and tombstone collection is due, which
// versions win, which tombstones may go, what a digest covers, and the new
// version a re-replication writes. Pure and deterministic, time injected:
// the daemon (node/anti_entropy_runtime.h) and the simulation (sim/) both
// decide with these, so the simulation checks the daemon's rules.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "replication/rereplication.h"
#include "store/version.h"

namespace porcupine::replication {

struct UpkeepOptions {
  int64_t interval_ms = 300000;  // a full round this often
  int64_t after_join_ms = 2000;  // and this soon after a member joined or was removed
  int64_t grace_ms = 86400000;   // tombstone GC age (cluster.tombstone_grace_s)
};

// When rounds run. A state machine over the views seen and the time.
class UpkeepSchedule {
 public:
  UpkeepSchedule(const UpkeepOptions& options, int64_t now_ms)
      : options_(options), next_round_ms_(now_ms + options.interval_ms) {}

  // A new view: a round soon when a member joined or a node was removed.
  void OnView(const cluster::View& view, int64_t now_ms);
  // True when a round is due; the caller then runs it (the schedule moves on).
  bool TakeRound(int64_t now_ms);
  // The earliest time TakeRound may return true.
  int64_t NextMs() const;

 private:
  UpkeepOptions options_;
  int64_t next_round_ms_;
  int64_t soon_ms_ = 0;  // 0: none wanted
  size_t removed_seen_ = 0;
};

// A message version as the upkeep rules see it.
struct HeldVersion {
  uint64_t hlc = 0;
  bool tombstone = false;
};

// Whether a version counts in the anti-entropy digests: tombstones older
// than half the grace are left out (both sides purge them eventually); the
// slot item lists still carry them, so a replica that kept a live copy
// through a partition gets the tombstone, never the reverse.
bool InDigest(const HeldVersion& v, int64_t now_ms, const UpkeepOptions& options);

// Whether this node may purge a tombstone: older than the grace, and no
// update of the message pending here (the delete reached every target).
bool Collectable(const HeldVersion& v, bool pending, int64_t now_ms, const UpkeepOptions& options);

// Re-replication of one message as held (rereplication.h): the new replica
// list and the version to write it with (later than the held one and not
// before `now_hlc`), or nullopt when nothing is to change here. Decided
// against the record as stored when the write happens, never an older read:
// a tombstone is never re-replicated (a delete landing after the scan wins).
struct Replan {
  std::vector<cluster::NodeId> replicas;
  uint64_t hlc = 0;
};
std::optional<Replan> PlanRereplication(const std::vector<cluster::NodeId>& replicas,
                                        const std::string& id, const HeldVersion& held,
                                        uint64_t now_hlc, const ReplicaPlanInput& in);

// A version that replaces a held one must also reach the nodes the held one
// named and it does not (a re-replication the deleting replica had not seen
// yet: its tombstone names the old list, and the new replica would keep its
// live copy for ever). When there are such nodes (not removed for good), the
// replacing node writes the version again with the union of both lists, as a
// later version it coordinates, and pushes it to all of them. Returns that
// union, or nullopt when the incoming list already names every node.
std::optional<std::vector<cluster::NodeId>> WidenedReplicas(
    const std::vector<cluster::NodeId>& held, const std::vector<cluster::NodeId>& incoming,
    const std::set<cluster::NodeId>& removed);

}  // namespace porcupine::replication
