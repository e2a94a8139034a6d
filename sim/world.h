// Internals of the simulation (sim.h): the event loop and network (World)
// and one simulated node (SimNode).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "manager/fragment_presence.h"
#include "replication/anti_entropy.h"
#include "replication/maintenance.h"
#include "replication/replicator.h"
#include "sim/sim.h"

namespace porcupine::sim {

using manager::SoftState;

// ---- messages between simulated nodes ----------------------------------

struct MLookup {
  uint64_t req = 0;
  std::string user;
  uint64_t entry_epoch = 0;  // of the user's bucket in the sender's view
};
struct MLookupRep {
  uint64_t req = 0;
  SoftState::State state = SoftState::State::kNotManager;
  std::vector<NodeId> mail_map;
};
struct MStore {
  uint64_t req = 0;
  std::string user;
  uint64_t msg = 0;
  bool in_map = false;  // the proxy's mail map already listed the target
  Epoch proxy_epoch = 0;
  std::vector<NodeId> replicas;  // the receiver first: it coordinates
  std::vector<NodeId> mail_map;  // the proxy's, sorted (for the replicas' in_map)
};

// One version of one message (a tombstone once deleted).
struct Version {
  uint64_t hlc = 0;
  bool tombstone = false;
  std::vector<NodeId> replicas;
  bool operator==(const Version&) const = default;
};
struct MReplica {
  uint64_t push = 0;
  std::string user;
  uint64_t msg = 0;
  Version version;
  bool in_map = false;  // the delivering proxy's mail map listed the target
};
struct MReplicaAck {
  uint64_t push = 0;
  std::string user;
  uint64_t msg = 0;
  uint64_t held = 0;
};
struct MStoreRep {
  uint64_t req = 0;
};
struct MMapUpdate {
  uint64_t id = 0;
  std::string user;
  bool add = true;
  uint64_t stamp = 0;
  uint64_t entry_epoch = 0;
};
struct MMapUpdateRep {
  uint64_t id = 0;
  bool ok = false;
};
struct MChunk {
  uint64_t id = 0;
  manager::RebuildChunk chunk;
};
struct MChunkAck {
  uint64_t id = 0;
};
struct MCreate {
  uint64_t req = 0;
  std::string user;
  uint64_t entry_epoch = 0;
};
enum class CreateResult { kCreated, kExists, kRetry };
struct MCreateRep {
  uint64_t req = 0;
  CreateResult result = CreateResult::kRetry;
};
struct MProfilePut {
  uint64_t id = 0;
  store::Profile profile;
};
struct MProfileAck {
  uint64_t id = 0;
};
struct MGossip {};
// Anti-entropy (replication/anti_entropy.h), as the daemon's exchange: the
// lower id sends its digests of what lists the peer; the peer answers the
// slots that differ; for each the lower id sends its items, and the peer
// pushes what the lower id lacks and answers what it lacks itself.
struct MDigests {
  std::vector<uint64_t> digests;
};
struct MDiffering {
  std::vector<uint32_t> slots;
};
struct MSlotItems {
  uint32_t slot = 0;
  std::vector<replication::Item> items;
};
struct MSlotPull {
  std::vector<replication::Item> items;
};

using Body =
    std::variant<cluster::Message, MLookup, MLookupRep, MStore, MStoreRep, MMapUpdate,
                 MMapUpdateRep, MChunk, MChunkAck, MCreate, MCreateRep, MProfilePut, MProfileAck,
                 MGossip, MReplica, MReplicaAck, MDigests, MDiffering, MSlotItems, MSlotPull>;

struct Envelope {
  NodeId from = 0;
  uint64_t load = 0;  // piggybacked on every message
  Body body;
};

class World;

// ---- one node ----------------------------------------------------------

// Hard state: survives crashes (every write is durable at once).
struct Disk {
  std::map<std::string, store::Profile> profiles;
  std::map<std::string, std::map<uint64_t, Version>> messages;  // user → message → version
  std::map<replication::ObjectRef, replication::Entry> log;     // the update log
  uint32_t lamport_floor = 0;                                   // persisted Membership::lamport()
  // Derived: anti-entropy digests of the profile slots, rebuilt when
  // profiles changed (every node holds every profile: costly at 200 nodes).
  std::vector<uint64_t> profile_digests;
  bool profiles_changed = true;

  bool HoldsLive(const std::string& user) const;
  std::vector<uint64_t> Live(const std::string& user) const;
};

replication::ObjectRef MessageRef(const std::string& user, uint64_t msg);

class SimNode {
 public:
  SimNode(World& world, int index, NodeId id, std::string address, std::vector<std::string> seeds);

  NodeId id() const { return id_; }
  const std::string& address() const { return address_; }
  bool alive() const { return soft_ != nullptr; }
  bool paused(int64_t now) const { return paused_until_ > now; }
  int64_t paused_until() const { return paused_until_; }
  Disk& disk() { return disk_; }
  // REQUIRES: alive().
  const cluster::Membership& membership() const { return soft_->membership; }
  const SoftState& soft_state() const { return soft_->state; }
  bool Busy() const;  // anything still to send or retry

  void Boot();
  void Crash();
  void Pause(int64_t until) { paused_until_ = until; }
  void Receive(const Envelope& e);
  // Runs due timers (membership, retries, gossip, disk, deadlines).
  void Tick();
  // The next time Tick has work.
  int64_t NextWake() const;

  // Workload entry points.
  void Deliver(const std::string& user, uint64_t msg);
  void CreateUser(const std::string& user);
  // Deletes one message of `user` held here (coordinates its tombstone).
  void DeleteOne(std::string user, uint64_t msg);

 private:
  struct Reliable {
    enum Kind { kMapUpdate, kChunk, kProfile } kind;
    NodeId dest = 0;  // fixed (chunk, profile); map updates re-resolve the manager
    int64_t next_send = 0;
    Body body;
    std::function<void()> on_ack;
  };
  struct Delivery {
    std::string user;
    uint64_t msg = 0;
    int64_t deadline = 0;
    int64_t retry_at = 0;  // 0: waiting for a reply
    int64_t reply_by = 0;  // re-send when no reply by then
    uint64_t current_req = 0;
    bool storing = false;
  };
  struct Create {
    std::string user;
    int64_t deadline = 0;
    int64_t retry_at = 0;
    int64_t reply_by = 0;
    uint64_t current_req = 0;
  };
  struct InFlightPush {
    replication::ObjectRef object;
    NodeId target = 0;
    int64_t deadline = 0;
    uint64_t store = 0;  // the waiting store it counts for (0: none)
  };
  struct WaitingStore {
    size_t needed = 0;       // acknowledgements still wanted
    size_t outstanding = 0;  // pushes not answered yet
    int64_t deadline = 0;
    std::function<void()> reply;
  };
  struct Parked {
    NodeId from = 0;
    MLookup lookup;
    int64_t deadline = 0;
  };
  struct Soft {
    Soft(const cluster::MembershipOptions& o, cluster::Member self, std::vector<std::string> seeds,
         uint64_t seed, uint32_t lamport_floor, NodeId id, uint32_t buckets,
         const replication::UpkeepOptions& upkeep_options, int64_t now)
        : membership(o, std::move(self), std::move(seeds), seed, lamport_floor),
          state(id, buckets),
          upkeep(upkeep_options, now) {}
    cluster::Membership membership;
    SoftState state;
    cluster::LoadTable loads;
    cluster::View announced;  // the view the last announcement was made under
    std::map<uint64_t, Reliable> reliable;
    std::map<uint64_t, Delivery> deliveries;
    std::map<uint64_t, Create> creates;
    std::vector<Parked> parked;
    manager::FragmentPresence presence;  // the daemon's rule for telling managers
    std::deque<std::function<void()>> disk_queue;
    replication::Replicator replicator;
    std::map<uint64_t, InFlightPush> pushes;
    std::map<uint64_t, WaitingStore> waiting;
    replication::UpkeepSchedule upkeep;
    int64_t disk_done_at = 0;
    int64_t next_gossip = 0;
    uint64_t last_stamp = 0;
    std::mt19937_64 rng;
  };

  int64_t now() const;
  void Watch(const std::string& user, const std::string& what);
  uint64_t Stamp();
  uint64_t Load() const;
  uint64_t NextId() { return ++ids_; }
  void Send(NodeId to, Body body);
  void SendAddress(const std::string& address, Body body);
  void AfterMembership();
  void OnView();
  void Announce(const cluster::View& view);
  NodeId ManagerOf(const std::string& user) const;
  void SendReliable(Reliable r);
  void Resend(uint64_t id, Reliable& r);
  void RunReliable();
  void Ack(uint64_t id);

  void OnLookup(NodeId from, const MLookup& m);
  bool AnswerLookup(NodeId from, const MLookup& m, bool final);
  uint64_t EntryEpoch(const std::string& user) const;
  void OnLookupRep(const MLookupRep& m);
  void SendLookup(uint64_t delivery_id, Delivery& d);
  void OnStore(NodeId from, const MStore& m);
  void OnStoreRep(const MStoreRep& m);
  void OnMapUpdate(NodeId from, const MMapUpdate& m);
  void OnCreate(NodeId from, const MCreate& m);
  void OnCreateRep(const MCreateRep& m);
  void SendCreate(uint64_t create_id, Create& c);
  void OnProfilePut(NodeId from, const MProfilePut& m);
  void RunDeliveries();
  void RunParked(bool force);
  void RunDisk();
  // Replication.
  void Log(const std::string& user, uint64_t msg, const Version& v);
  void Push(const replication::Push& p, uint64_t store, bool in_map = false);
  void RunPushes();
  void Pushed(uint64_t push, bool ok, uint64_t held);
  void OnReplica(NodeId from, const MReplica& m);
  void OnReplicaAck(const MReplicaAck& m);
  void Release(uint64_t store);
  // Upkeep (sim/upkeep.cc).
  replication::UpkeepOptions UpkeepOptions() const;
  void RunUpkeep();
  void Rereplicate();
  void CollectTombstones();
  std::vector<uint64_t> Digests(NodeId peer);
  std::vector<replication::Item> SlotItems(NodeId peer, uint32_t slot) const;
  void RepairPush(NodeId peer, const std::vector<replication::Item>& items);
  void OnDigests(NodeId from, const MDigests& m);
  void OnDiffering(NodeId from, const MDiffering& m);
  void OnSlotItems(NodeId from, const MSlotItems& m);

  World& world_;
  int index_;
  NodeId id_;
  std::string address_;
  std::vector<std::string> seeds_;
  Disk disk_;
  uint64_t incarnation_ = 0;
  int64_t paused_until_ = 0;
  uint64_t ids_ = 0;
  std::unique_ptr<Soft> soft_;  // null while crashed
  std::map<uint64_t, uint64_t> req_to_delivery_;
};

// ---- the world ---------------------------------------------------------

class World {
 public:
  explicit World(const Options& options);
  Result Run();

  int64_t now() const { return now_; }
  const Options& options() const { return options_; }
  std::mt19937_64& rng() { return rng_; }
  Result& result() { return result_; }

  // Network: delivers after a random delay unless lost, partitioned or the
  // destination is down (then and at delivery time).
  void Send(int from_index, const std::string& to_address, Envelope e);
  void SendId(int from_index, NodeId to, Envelope e);
  // Schedules a wake-up of node `index` at `at` (its generation is checked).
  void Wake(int index, int64_t at);

  void Violation(const std::string& what);
  // Prints with the time when tracing (or always with force).
  void Trace(const std::string& what, bool force = false);

  // Hooks from nodes.
  void OnInstall(SimNode& node, const cluster::View& prev, const cluster::View& view);
  void OnDeliveryDone(const std::string& user, uint64_t msg, bool acked);
  void OnDeleted(const std::string& user, uint64_t msg);
  void OnNotFound(SimNode& node, const std::string& user);
  void OnUserCreated(const std::string& user);
  uint64_t NewMessage() { return ++next_msg_; }
  int IndexOf(NodeId id) const;
  SimNode* Node(NodeId id);

 private:
  struct Event {
    int64_t at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void At(int64_t at, std::function<void()> fn);
  void Deliver(int from, int to, Envelope e);
  bool CanTalk(int a, int b) const;
  void ScheduleWorkload();
  void ScheduleNemesis();
  void Nemesis();
  void Heal();
  void Finish();
  void CheckFinal();
  void CheckReplicas();
  int Down() const;
  int PickAlive();
  int64_t Exp(double per_s);

  Options options_;
  std::mt19937_64 rng_;
  Result result_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<int64_t> wake_at_;  // per node: the earliest scheduled wake
  std::map<std::string, int> by_address_;
  std::map<NodeId, int> by_id_;
  std::vector<int> group_;  // partition group per node
  bool partitioned_ = false;
  bool chaos_ = true;
  double loss_ = 0;
  std::vector<std::string> users_;
  std::set<std::string> existing_;        // users acknowledged as created
  std::set<std::string> initial_;         // users present on every disk from the start
  std::map<Epoch, cluster::View> views_;  // every committed view, by epoch
  std::vector<std::unique_ptr<std::function<void()>>> loops_;  // workload generators
  std::set<std::pair<std::string, uint64_t>> acked_;    // deliveries acknowledged to the client
  std::set<std::pair<std::string, uint64_t>> deleted_;  // deletes made durable
  uint64_t next_msg_ = 0;
  int next_user_ = 0;
};

}  // namespace porcupine::sim
