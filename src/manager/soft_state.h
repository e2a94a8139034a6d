// The user manager's soft state (DESIGN.md §2, §6) as a deterministic state
// machine: for the buckets this node manages in the installed view, each
// user's profile (the newest copy seen) and mail map (the nodes holding
// fragments of the user's mail). Nothing here is persistent; it is rebuilt
// from the announcements every node sends after a view change
// (manager/rebuild.h) and kept current by fragment nodes and user
// administration. The daemon wraps it in LocalManager; sim/ drives it
// directly.
//
// Rebuild completeness. After installing view V every member sends this node
// one announcement set (one or more chunks, possibly empty) tagged with the
// view it scanned under. A bucket is *ready* when every member has completed
// an announcement set for a view at least as new as the bucket's entry epoch;
// until then a user not found may still be announced, so lookups must not
// answer "no such user" (State::kRebuilding). A member listed as joined in V
// counts only with announcement sets from V or later.
//
// Mail-map entries are ordered per (user, node) by the stamp the fragment
// node put on them (its hybrid clock), so a late MailMapRemove never undoes
// a newer MailMapAdd or announcement, whatever the arrival order.
//
// Thread-compatible: the caller serializes access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/membership.h"
#include "store/records.pb.h"

namespace porcupine::manager {

using cluster::Epoch;
using cluster::NodeId;

// One user as seen by one node's scan.
struct Announcement {
  std::string user;
  bool has_fragment = false;              // the node holds live mail of the user
  std::optional<store::Profile> profile;  // the node's replica (tombstones too)
};

// Every user of one bucket a node holds — complete: a user not listed (or
// listed without a fragment) has no mail on the node — for the bucket's
// assignment with entry epoch `entry_epoch`, as of `stamp`, the node's clock
// taken before the scan.
struct BucketAnnouncement {
  uint32_t bucket = 0;
  uint64_t entry_epoch = 0;
  uint64_t stamp = 0;
  std::vector<Announcement> users;
};

// One message of a node's announcement set to one manager.
struct RebuildChunk {
  Epoch view_epoch = 0;  // the sender's view when it scanned
  uint32_t seq = 0;      // 0 .. total-1
  uint32_t total = 1;
  std::vector<BucketAnnouncement> buckets;
};

struct SoftStateOptions {
  size_t max_buffered_chunks = 4096;  // chunks of views not installed yet, kept at most
};

class SoftState {
 public:
  SoftState(NodeId self, uint32_t buckets, const SoftStateOptions& options = {});

  // Installs a view this node is a member of. Buckets no longer managed are
  // dropped; buckets newly assigned (entry changed, or all of them when this
  // node joined) start empty and rebuilding; kept buckets forget departed
  // nodes. Buffered chunks of this view or older are applied afterwards.
  void InstallView(const cluster::View& view);
  const cluster::View& view() const { return view_; }

  // Applies an announcement chunk from member `from`. Entries for buckets
  // this node manages under the same entry epoch are merged; others are
  // dropped (the sender re-announces after its next view change), except
  // that chunks of a view newer than the installed one are kept until it is
  // installed (at most options.max_buffered_chunks; the oldest go first).
  void ApplyRebuild(NodeId from, const RebuildChunk& chunk);

  enum class State {
    kFound,       // the user exists; mail_map is current (possibly partial)
    kNotFound,    // no such user, and the bucket is fully rebuilt
    kRebuilding,  // not known (yet): the bucket is still being rebuilt
    kNotManager,  // this node does not manage the user's bucket
  };
  struct Lookup {
    State state = State::kNotManager;
    const store::Profile* profile = nullptr;  // kFound: valid until the next mutation
    std::vector<NodeId> mail_map;             // kFound: members holding fragments, sorted
  };
  // `entry_epoch` is the epoch of the user's bucket entry in the caller's
  // view: a manager answers (and applies updates) only for the same
  // assignment, so neither side acts on a stale view — a caller behind gets
  // kNotManager and retries after its view catches up, a caller ahead retries
  // until this node installs the view. Find(user) uses this node's own entry.
  Lookup Find(const std::string& user, uint64_t entry_epoch) const;
  Lookup Find(const std::string& user) const;
  // The entry epoch of the user's bucket in the installed view.
  uint64_t EntryEpochOf(const std::string& user) const;

  bool Manages(uint32_t bucket) const;
  bool Ready(uint32_t bucket) const;
  uint32_t BucketOfUser(const std::string& user) const;

  // Fragment-node reports. False when this node does not manage the bucket
  // under `entry_epoch` (see Find).
  bool MailMapAdd(const std::string& user, NodeId node, uint64_t stamp, uint64_t entry_epoch);
  bool MailMapRemove(const std::string& user, NodeId node, uint64_t stamp, uint64_t entry_epoch);
  // Merges `p` into the copy held (store/profile_merge.h: a copy derived
  // from the held one replaces it). False when this node does not manage
  // the bucket under `entry_epoch`.
  bool PutProfile(const store::Profile& p, uint64_t entry_epoch);

  // Live users (profile not a tombstone) of every managed bucket, sorted.
  std::vector<std::string> Users() const;
  size_t user_count() const;
  uint32_t buckets_managed() const;
  uint32_t buckets_rebuilding() const;
  uint64_t chunks_dropped() const { return chunks_dropped_; }

 private:
  struct NodeEntry {
    uint64_t stamp = 0;
    bool present = false;
  };
  struct UserEntry {
    std::optional<store::Profile> profile;
    std::map<NodeId, NodeEntry> nodes;
  };
  struct Bucket {
    std::unordered_map<std::string, UserEntry> users;
    // Per node: the stamp of its latest (complete) announcement. A mail-map
    // update stamped earlier is already reflected in it and is ignored.
    std::map<NodeId, uint64_t> floor;
    void clear() {
      users.clear();
      floor.clear();
    }
  };
  struct Progress {
    Epoch done = 0;                               // newest view with a complete announcement set
    Epoch min_epoch = 0;                          // joined in this view: older sets do not count
    std::map<Epoch, std::set<uint32_t>> partial;  // view → chunk seqs seen
  };

  void Apply(NodeId from, const RebuildChunk& chunk);
  bool Owns(uint32_t bucket, uint64_t entry_epoch) const {
    return Manages(bucket) && view_.user_map.EpochOf(bucket) == entry_epoch;
  }
  void Merge(Bucket& bucket, NodeId from, const BucketAnnouncement& ba);
  // Keeps the merge of the held copy of the profile and `p`.
  static void Keep(UserEntry& e, const store::Profile& p);
  static void SetNode(UserEntry& e, NodeId node, uint64_t stamp, bool present);
  // SetNode unless the bucket's floor for `node` covers `stamp`.
  static void Update(Bucket& b, const std::string& user, NodeId node, uint64_t stamp, bool present);

  NodeId self_;
  uint32_t buckets_;
  SoftStateOptions options_;
  cluster::View view_;
  std::vector<Bucket> state_;  // per bucket; empty unless managed
  std::map<NodeId, Progress> progress_;
  std::vector<std::pair<NodeId, RebuildChunk>> buffered_;
  uint64_t chunks_dropped_ = 0;
};

}  // namespace porcupine::manager
