// Membership (DESIGN.md §6, PAPER.md §5): failure detection and the
// three-round membership protocol, as a deterministic state machine.
//
// The machine never touches sockets, clocks or randomness of its own: the
// driver (the daemon's asio loop, or sim/) feeds it messages, ticks and the
// current time, and drains the messages it wants sent. Given the same inputs
// and rng seed it produces the same outputs (DESIGN.md §9).
//
// Protocol summary
// - A node that detects a change becomes coordinator after a small random
//   jitter: it picks an epoch larger than any it has seen (Lamport counter,
//   own id as tie-breaker) and sends Propose to every address it knows.
//   Changes are: start-up with nobody answering, a silent ring successor, an
//   RPC failure reported by the data path, any message from a live node that
//   is not a member of the view (probes find restarted nodes and healed
//   partitions this way), an operator removal, a round that never committed.
// - Round 1/2: a node accepts a proposal larger than anything it accepted or
//   installed (abandoning its own round) and answers Accept with its current
//   view; otherwise a coordinator with a larger proposal pulls the proposer
//   into its own round, and anyone else answers Reject with the larger epoch.
// - Round 3: after accept_window_ms the coordinator commits. The members are
//   itself and every acceptor; the user map is UserMap::Recompute of the
//   newest view among theirs (the base). Members that were not in the base
//   view (new, restarted, paused, or from another partition) are listed as
//   `joined`: their soft state is stale or gone, so they re-announce all
//   their data and the buckets they manage are stamped with the new epoch,
//   so that everybody re-announces to them. A member installs a Commit unless
//   it accepted a larger epoch since.
// - A member that accepted a proposal but sees no Commit within
//   round_timeout_ms starts a round of its own.
// - Ring: each member pings its successor by node id every ping_interval_ms;
//   no PingAck for ping_timeout_ms starts a round. A member that hears from a
//   member still in an older view re-sends its Commit (a lost Commit heals).
// - Probes: every probe_interval_ms a Probe goes to every known address that
//   does not belong to a member (seeds, departed nodes).
// - Removal (operator): Remove(id) adds id to the removed set and starts a
//   round; the removed set travels in every Commit. Removed ids are never
//   members again; messages from them are answered with Removed, upon which
//   the removed node stops taking part (removed() turns true).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "cluster/user_map.h"

namespace porcupine::cluster {

// (Lamport counter, coordinator id) packed so that the integer order is the
// epoch order: counter in the high 32 bits.
using Epoch = uint64_t;
inline Epoch MakeEpoch(uint32_t counter, NodeId coordinator) {
  return (static_cast<uint64_t>(counter) << 32) | coordinator;
}
inline uint32_t EpochCounter(Epoch e) { return static_cast<uint32_t>(e >> 32); }
inline NodeId EpochCoordinator(Epoch e) { return static_cast<NodeId>(e & 0xffffffffu); }

// One node as the cluster knows it. `incarnation` changes on every start of
// the process, so a restarted node (whose soft state is gone) is told apart
// from the instance that was a member before.
struct Member {
  NodeId id = 0;
  uint64_t incarnation = 0;
  std::string address;  // cluster listener, host:port
  std::string name;     // operator-facing node name
  bool operator==(const Member&) const = default;
};

struct View {
  Epoch epoch = 0;              // 0: no view installed yet
  std::vector<Member> members;  // sorted by id, unique ids
  UserMap user_map{1, 0};       // bucket → manager; every manager is a member
  std::set<NodeId> removed;     // ids taken out for good by the operator
  // The view this one was computed from (the newest among the acceptors'
  // views; 0 for a cluster's first view), and the members that were not in it
  // with the same incarnation (sorted).
  Epoch base_epoch = 0;
  std::vector<NodeId> joined;

  bool Contains(NodeId id) const { return Find(id) != nullptr; }
  // The member with `id`, or nullptr.
  const Member* Find(NodeId id) const;
  // True when `m` is a member with the same incarnation.
  bool HasIncarnation(const Member& m) const;
  bool Joined(NodeId id) const;
  std::vector<NodeId> ids() const;  // sorted
  bool operator==(const View&) const = default;
};

// Messages. Every message carries the sender's Member record and the epoch
// of the sender's installed view (0 if none).
struct Ping {};
struct PingAck {};
struct Probe {};
struct ProbeAck {};
struct Propose {
  Epoch proposal = 0;
};
struct Accept {
  Epoch proposal = 0;
  View view;  // the acceptor's installed view (epoch 0: none)
};
struct Reject {
  Epoch proposal = 0;     // the proposal being rejected
  Epoch seen = 0;         // the larger epoch the rejecting node accepted or installed
  bool in_round = false;  // the rejecting node waits for another round's commit
};
struct Commit {
  View view;
};
struct Removed {};  // "you were removed from the cluster by the operator"
using Body = std::variant<Ping, PingAck, Probe, ProbeAck, Propose, Accept, Reject, Commit, Removed>;

struct Message {
  Member from;
  Epoch view_epoch = 0;  // the sender's installed view
  Body body;
};

// A message to send. The address is authoritative (seeds have no id yet);
// `to` is the id when known, else 0.
struct Outgoing {
  std::string address;
  NodeId to = 0;
  Message message;
};

struct MembershipOptions {
  uint32_t buckets = 256;
  int64_t ping_interval_ms = 250;    // ring ping period
  int64_t ping_timeout_ms = 1000;    // no PingAck for this long: the successor is suspect
  int64_t probe_interval_ms = 1000;  // probes to known non-member addresses
  int64_t accept_window_ms = 300;    // round 2: how long a coordinator collects accepts
  int64_t round_timeout_ms = 1500;   // accepted but no commit for this long: new round
  int64_t max_jitter_ms = 100;       // random delay before coordinating a round
};

class Membership {
 public:
  // `seeds`: addresses of other nodes (this node's own address is ignored).
  // `rng_seed` seeds the jitter. `lamport_floor`: the largest lamport() this
  // node persisted before (0 on first start); every epoch this instance
  // creates has a larger counter, so epochs stay unique across restarts.
  // REQUIRES: self.id != 0, self.address set.
  Membership(const MembershipOptions& options, Member self, std::vector<std::string> seeds,
             uint64_t rng_seed, uint32_t lamport_floor = 0);

  // Starts: probes the seeds and schedules a first round, so a node joins an
  // existing cluster (whose members answer the probe with a round of their
  // own) or, alone, commits a view of itself. Until a view is installed
  // view().epoch == 0 and the node must not serve.
  void Start(int64_t now_ms);

  // Input. `now_ms` never decreases across calls.
  void OnMessage(int64_t now_ms, const Message& message);
  // Runs due timers; call at or after NextTimerMs().
  void OnTick(int64_t now_ms);
  // The data path could not reach a member (RPC deadline or connection
  // failure): starts a round unless one is running or scheduled.
  void OnUnreachable(int64_t now_ms, NodeId node);
  // Operator removal: the node is never a member again. Returns false (and
  // does nothing) for this node's own id.
  bool Remove(int64_t now_ms, NodeId node);

  // Output: the messages to send, in order.
  // REQUIRES of the driver: before sending them, make lamport() durable when
  // it grew (it is the floor of the next start).
  std::vector<Outgoing> TakeOutbox();
  uint32_t lamport() const { return lamport_; }
  // The earliest time OnTick has work to do.
  int64_t NextTimerMs() const;
  // The installed view.
  const View& view() const { return view_; }
  // The view installed before the current one (epoch 0 if none): what the
  // soft-state rebuild compares against.
  const View& previous_view() const { return previous_; }
  // True once per installed view (reset by the call).
  bool TakeViewChanged();

  const Member& self() const { return self_; }
  // True once another node told this one it was removed by the operator.
  bool removed() const { return self_removed_; }
  // Every address this node would propose to (sorted), for status pages.
  std::vector<std::string> KnownAddresses() const;
  // True while this node coordinates a round or waits for a commit.
  bool InRound() const;
  // The largest epoch this node has accepted or proposed.
  Epoch accepted() const { return accepted_; }
  // Internal state in one line, for logs and debugging.
  std::string DebugString(int64_t now_ms) const;

 private:
  struct Acceptor {
    Member member;
    View view;
  };

  void Send(const std::string& address, NodeId to, Body body);
  void Learn(const Member& m);
  void StartRoundSoon(int64_t now_ms);
  void BeginRound(int64_t now_ms);
  void CommitRound(int64_t now_ms);
  void Install(int64_t now_ms, View view);
  View ComputeView(Epoch epoch) const;
  // A message from a node that is not a current member (or is a restarted
  // instance of one): the view must change.
  void OnOutsider(int64_t now_ms, const Message& m);
  // A member still in an older view: re-send our Commit (rate-limited).
  void SyncView(int64_t now_ms, const Message& m);
  void OnPropose(int64_t now_ms, const Message& m, Epoch proposal);
  void OnReject(int64_t now_ms, const Reject& r);
  void OnCommit(int64_t now_ms, const Message& m, const View& v);
  std::vector<std::string> ProposeTargets() const;
  int64_t Jitter();

  MembershipOptions options_;
  Member self_;
  std::mt19937_64 rng_;
  View view_;
  View previous_;
  bool view_changed_ = false;
  bool started_ = false;
  bool self_removed_ = false;
  std::set<NodeId> removed_;

  uint32_t lamport_;
  Epoch accepted_ = 0;  // largest proposal accepted (or own proposal)
  int64_t accepted_at_ms_ = 0;
  bool coordinating_ = false;
  std::map<NodeId, Acceptor> acceptors_;  // of the round this node coordinates
  int64_t commit_at_ms_ = 0;
  std::optional<int64_t> round_at_ms_;  // a round is scheduled to start then

  NodeId successor_ = 0;
  int64_t next_ping_ms_ = 0;
  int64_t last_ping_ack_ms_ = 0;
  int64_t next_probe_ms_ = 0;
  std::map<NodeId, int64_t> last_sync_ms_;     // per member: last Commit re-sent
  std::map<NodeId, int64_t> last_removed_ms_;  // per removed id: last Removed sent

  std::set<std::string> seeds_;
  std::map<std::string, NodeId> known_;  // address → id (0: not known yet), seeds included
  std::vector<Outgoing> outbox_;
};

// The user map and joined set of a new view with `members` (sorted by id)
// computed from `base` (see the protocol summary; epoch 0: none).
UserMap ComputeUserMap(uint32_t buckets, const View& base, const std::vector<Member>& members,
                       Epoch epoch, std::vector<NodeId>* joined);

}  // namespace porcupine::cluster
