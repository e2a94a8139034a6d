// The replication manager's bookkeeping (DESIGN.md §6 "Replication",
// PAPER.md §7, docs/replication.md) as a deterministic state machine: the
// unretired updates of this node (the update log's content), which targets
// still need each, when to try each target again (exponential backoff), and
// takeovers of entries whose coordinator went quiet.
//
// It decides nothing about contents: the driver (node/replication_runtime.h
// in the daemon, sim/ in the simulation) pushes the object's *current*
// version when a push is due — so a message created and then deleted while a
// replica was down reaches it only as the tombstone — and reports the
// outcome. Persistence is the driver's too: it writes the log entry in the
// same batch as the object, and deletes it when the replicator says the
// entry retired. Entries that did not retire before a crash are re-pushed
// after the restart; pushes are idempotent.
//
// Thread-compatible: the caller serializes access.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/membership.h"

namespace porcupine::replication {

using cluster::NodeId;

// A replicated object: one message of a user (metadata + body) or a profile.
struct ObjectRef {
  enum class Kind : uint8_t { kMessage = 1, kProfile = 2 };
  Kind kind = Kind::kMessage;
  std::string user;
  uint32_t folder = 0;  // messages
  std::string id;       // messages: the 16-byte message id
  auto operator<=>(const ObjectRef&) const = default;
};

// One unretired update.
struct Entry {
  ObjectRef object;
  uint64_t hlc = 0;            // this version (or a newer one) must reach every target
  std::set<NodeId> remaining;  // targets that have not acknowledged it
  // A replica's copy of the coordinator's entry (replication factor >= 3):
  // pushed only if the coordinator has not retired it within takeover_ms.
  bool takeover = false;
  int64_t created_ms = 0;
  uint64_t bytes = 0;  // object size (backlog metrics)
};

struct Push {
  ObjectRef object;
  NodeId target = 0;
  uint64_t hlc = 0;
};

struct ReplicatorOptions {
  int64_t retry_initial_ms = 200;  // first retry after a failed push
  int64_t retry_max_ms = 10000;    // backoff cap
  int64_t takeover_ms = 10000;     // a takeover entry waits this long for the coordinator
};

class Replicator {
 public:
  explicit Replicator(const ReplicatorOptions& options = {}) : options_(options) {}

  // An update made durable here (its log entry with it). Merges with an
  // entry of the same object: the newer version, the union of targets.
  // Targets are due at once (takeover entries after takeover_ms). An entry
  // without targets is ignored.
  void Add(Entry entry, int64_t now_ms);
  // At most `max` pushes due now to targets that are members of `view`,
  // marked in flight (not handed out again until their outcome is reported).
  std::vector<Push> TakeDue(int64_t now_ms, const cluster::View& view, size_t max = SIZE_MAX);
  // The pushes of one object, due or not, for the caller to make right away
  // (the synchronous part of a delivery); marked in flight.
  std::vector<Push> TakeNow(const ObjectRef& object, const cluster::View& view);

  enum class Outcome { kPending, kRetired, kUnknown };
  // `target` holds version `held_hlc` (or newer) of the object now. kRetired
  // when no target is left: the driver deletes the log entry.
  Outcome OnAck(const ObjectRef& object, NodeId target, uint64_t held_hlc, int64_t now_ms);
  // The push did not arrive: try again after the backoff.
  void OnFailure(const ObjectRef& object, NodeId target, int64_t now_ms);
  // The coordinator retired the update: a takeover copy is dropped.
  // Returns true when an entry was dropped (the driver deletes it).
  bool OnRetire(const ObjectRef& object, uint64_t hlc);
  // A new view: targets that are members again (not of the view before)
  // are due at once; targets removed for good are dropped (re-replication
  // chooses new ones). Returns the entries that retired because of that.
  std::vector<ObjectRef> OnView(const cluster::View& view, int64_t now_ms);

  const Entry* Find(const ObjectRef& object) const;
  size_t size() const { return entries_.size(); }
  // The earliest time TakeDue(·, view) may return something (INT64_MAX:
  // never): targets outside the view do not count.
  int64_t NextDueMs(const cluster::View& view) const;

  struct Backlog {
    size_t entries = 0;
    uint64_t bytes = 0;
    int64_t oldest_ms = 0;  // created_ms of the oldest entry (0: none)
  };
  // Per target node.
  std::map<NodeId, Backlog> BacklogByPeer() const;

 private:
  struct Target {
    int64_t due_ms = 0;
    int64_t backoff_ms = 0;
    bool in_flight = false;
  };
  struct State {
    Entry entry;
    std::map<NodeId, Target> targets;
  };

  ReplicatorOptions options_;
  std::map<ObjectRef, State> entries_;
  std::set<NodeId> members_;  // of the view last passed to OnView
};

}  // namespace porcupine::replication
