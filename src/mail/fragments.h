// Fragments: the part of users' mail stored on one node (DESIGN.md §2). The
// mail flows reach a node's fragments through FragmentStore, locally
// (LocalFragments) or over RPC (node/remote.h).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "cluster/membership.h"
#include "core/hlc.h"
#include "core/status.h"
#include "manager/fragment_presence.h"
#include "manager/router.h"
#include "replication/sink.h"
#include "store/store.h"

namespace porcupine::mail {

using cluster::NodeId;

// One message for one user, as handed to a fragment node.
struct NewMessage {
  std::string user;
  store::MessageMeta meta;       // meta.replicas: every node that gets a copy, the receiver first
  bool in_map = false;           // the proxy's mail map for the user already lists the target node
  std::vector<NodeId> mail_map;  // the proxy's mail map (each replica announces itself if absent)
};

// A change of one message, applied by the message's coordinating holder to
// the version it holds: a flag change (IMAP STORE), so that concurrent
// changes of different flags all take effect; a new UID (kRenumber: only
// while the message still has from_uid, so that sessions renumbering one
// message at once move it once); or its deletion (kTombstone: the end of a
// MOVE, which only one of two racing moves gets to make).
struct FlagChange {
  enum class Mode { kReplace = 0, kAdd = 1, kRemove = 2, kRenumber = 3, kTombstone = 4 };
  store::MessageId id;
  Mode mode = Mode::kReplace;
  std::vector<std::string> flags;
  uint32_t from_uid = 0;
  uint32_t to_uid = 0;
};

// One folder's messages held on a node (FragmentStore::List).
struct Listing {
  std::vector<store::MessageMeta> messages;
  // Changes whenever any of the user's messages on the node changes; 0 when
  // the node gives none (store::Store::MessagesVersion).
  uint64_t version = 0;
  // The caller's `if_changed` version still holds: `messages` is empty and
  // the caller's copy of the listing is current.
  bool unchanged = false;
};

// The version of one slot of users' messages on a node (store::Store::SlotVersion).
struct SlotVersion {
  uint32_t slot = 0;
  uint64_t version = 0;
  bool operator==(const SlotVersion&) const = default;
};

class FragmentStore {
 public:
  virtual ~FragmentStore() = default;
  // Waits at most `wait` until the version of a slot in `slots` differs from
  // the one given, and returns the slots that differ with their versions
  // (at once when some differ already; empty when none did in time). IMAP
  // sessions in IDLE use it not to re-read folders nothing changed in.
  virtual asio::awaitable<Result<std::vector<SlotVersion>>> WatchVersions(
      std::vector<SlotVersion> slots, std::chrono::milliseconds wait) {
    (void)slots;
    (void)wait;
    co_return Status::Unavailable("no version watch");
  }
  // Durably stores every message (one shared body) in one commit; then makes
  // sure the user's manager lists this node in the mail map (DESIGN.md §6
  // step 5), and, as the coordinator of each message's replicas, pushes it to
  // the others and waits for them (ack_copies) before answering OK.
  // UnknownOutcome when the messages are stored but the manager could not
  // be told (the caller must not store them elsewhere under the same ids).
  // `proxy_epoch` is the view the proxy chose the node in.
  virtual asio::awaitable<Status> Store(std::vector<NewMessage> messages,
                                        std::shared_ptr<const std::string> body,
                                        cluster::Epoch proxy_epoch) = 0;
  // The user's live messages of one folder held here, ordered by message id;
  // only `unchanged` when `if_changed` (non-zero) is still the version.
  virtual asio::awaitable<Result<Listing>> List(std::string user, uint32_t folder,
                                                uint64_t if_changed) = 0;
  // NotFound when the message is not held here (or deleted).
  virtual asio::awaitable<Result<std::string>> Fetch(std::string user, uint32_t folder,
                                                     store::MessageId id) = 0;
  // Durably tombstones the listed messages held here, as the coordinator of
  // the deletes (pushed to the other replicas); ids not held are ignored.
  virtual asio::awaitable<Status> Delete(std::string user, uint32_t folder,
                                         std::vector<store::MessageId> ids) = 0;
  // Durably applies the changes to the listed messages held here, as the
  // coordinator of the updates (pushed to the other replicas; last writer
  // wins by timestamp); ids not held (or deleted) are ignored. The ids this
  // call changed: a change that would change nothing is not among them.
  virtual asio::awaitable<Result<std::vector<store::MessageId>>> SetFlags(
      std::string user, uint32_t folder, std::vector<FlagChange> changes) = 0;
};

// Finds the fragment store of a node and the balancer's view of loads.
class NodeDirectory {
 public:
  virtual ~NodeDirectory() = default;
  virtual NodeId self() const = 0;
  // nullptr when the node is not a member of the current view.
  virtual FragmentStore* FragmentsOn(NodeId node) = 0;
  // The node's load as the balancer sees it (cluster/load_table.h).
  virtual uint64_t LoadOf(NodeId node) = 0;
};

// Fragments in this node's own store.
//
// Thread-safe.
struct FragmentOptions {
  // Copies that must be durable before a store or delete is acknowledged
  // (this node's included); fewer reachable still succeed (availability
  // first), counted in below_ack_copies().
  int ack_copies = 2;
};

class LocalFragments : public FragmentStore {
 public:
  // Every reference must outlive this object. `replication` may be set later
  // (SetReplication), before the first store of a replicated message.
  LocalFragments(const FragmentOptions& options, store::Store& store, Hlc& hlc, NodeId self,
                 manager::ManagerRouter& managers, manager::ViewSource& views);
  void SetReplication(replication::Sink* sink) { replication_ = sink; }

  asio::awaitable<Status> Store(std::vector<NewMessage> messages,
                                std::shared_ptr<const std::string> body,
                                cluster::Epoch proxy_epoch) override;
  asio::awaitable<Result<Listing>> List(std::string user, uint32_t folder,
                                        uint64_t if_changed) override;
  asio::awaitable<Result<std::string>> Fetch(std::string user, uint32_t folder,
                                             store::MessageId id) override;
  asio::awaitable<Status> Delete(std::string user, uint32_t folder,
                                 std::vector<store::MessageId> ids) override;
  asio::awaitable<Result<std::vector<store::MessageId>>> SetFlags(
      std::string user, uint32_t folder, std::vector<FlagChange> changes) override;
  // Woken by the store's commits (Store::VersionsChanged); InvalidArgument
  // for a slot out of range.
  asio::awaitable<Result<std::vector<SlotVersion>>> WatchVersions(
      std::vector<SlotVersion> slots, std::chrono::milliseconds wait) override;

  // Pending disk-bound operations: requests being served plus batches queued
  // for commit (the load of DESIGN.md §6).
  uint64_t Load() const { return inflight_.load() + store_.pending(); }

  // Test only (store.debug_op_delay_ms): every operation takes this much
  // longer, as on a slower disk, for the load-balancing experiments.
  void SetDebugDelay(std::chrono::milliseconds d) { debug_delay_ = d; }

  // A replica update of one message (replication): stored when later than
  // the copy held (store::VersionOf; a tombstone drops the body), announced
  // to the manager when this node newly holds the user's mail. Returns the
  // version held after, as store::VersionOf. InvalidArgument for a live
  // message this node does not hold, sent without its body.
  // `takeover`: the other targets, for this node's takeover entry (R >= 3).
  asio::awaitable<Result<uint64_t>> ApplyReplica(std::string user, store::MessageMeta meta,
                                                 std::shared_ptr<const std::string> body,
                                                 bool in_map, std::vector<NodeId> takeover);
  // Acknowledged stores and deletes that reached fewer than ack_copies copies.
  uint64_t below_ack_copies() const { return below_ack_copies_.load(); }
  // Fetches that found a live record without its body (never expected).
  uint64_t bodyless_records() const { return bodyless_.load(); }
  // Replicas written again with a wider replica list (WidenedReplicas).
  uint64_t widened() const { return widened_.load(); }

 private:
  store::Bucket BucketOfUser(const std::string& user) const;
  asio::awaitable<void> DebugDelay();
  // Makes sure the manager lists this node for `user` (stamped now).
  asio::awaitable<Status> Announce(const std::string& user);
  // After a delete: tells the manager when this node holds none of the
  // user's mail any more (best effort).
  asio::awaitable<void> MaybeEmptied(const std::string& user, uint64_t stamp);
  // Replicates the updates and counts the ones below ack_copies.
  asio::awaitable<void> Replicate(std::vector<replication::Update> updates,
                                  const std::vector<size_t>& copies_wanted);

  const FragmentOptions options_;
  store::Store& store_;
  Hlc& hlc_;
  const NodeId self_;
  const uint32_t buckets_;
  manager::ManagerRouter& managers_;
  manager::ViewSource& views_;
  replication::Sink* replication_ = nullptr;
  std::atomic<uint64_t> inflight_{0};
  std::atomic<uint64_t> below_ack_copies_{0};
  std::atomic<uint64_t> bodyless_{0};
  std::atomic<uint64_t> widened_{0};
  std::chrono::milliseconds debug_delay_{0};
  std::mutex mu_;
  // Users whose fragment here emptied and for whom MailMapRemove went out:
  // the next store for them announces itself whatever the proxy's map said.
  manager::FragmentPresence presence_;  // guarded by mu_
};

}  // namespace porcupine::mail
