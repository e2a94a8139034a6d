// The daemon's driver of the deterministic cluster core (DESIGN.md §9): it
// runs cluster::Membership on an asio strand with the real clock, sends its
// messages over gRPC, persists its Lamport floor, publishes every installed
// view to the data path (manager::ViewSource) and to the local manager, runs
// the reconstruction announcements (manager/rebuild.h) on a scan thread, keeps
// the load table (piggybacked loads and periodic gossip), and answers the
// admin API's cluster status.
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cluster/load_table.h"
#include "cluster/membership.h"
#include "core/change_signal.h"
#include "core/hlc.h"
#include "manager/local_manager.h"
#include "manager/router.h"
#include "rpc/client.h"
#include "store/store.h"

namespace porcupine::node {

using cluster::NodeId;

struct ClusterRuntimeOptions {
  cluster::MembershipOptions membership;
  std::vector<std::string> seeds;
  std::chrono::milliseconds membership_rpc_timeout{500};
  std::chrono::milliseconds rpc_timeout{2000};
  std::chrono::milliseconds gossip_interval{1000};
  std::chrono::milliseconds load_stale{5000};
  std::chrono::milliseconds announce_retry{200};  // an unacknowledged announcement is re-sent
  size_t rebuild_chunk_users = 5000;
};

class ClusterRuntime : public manager::ViewSource {
 public:
  // Every reference must outlive the runtime. `self` needs its id and name
  // now; address and incarnation come with Start. `self_load` reports this
  // node's pending disk-bound operations.
  ClusterRuntime(const ClusterRuntimeOptions& options, asio::io_context& io, cluster::Member self,
                 store::Store& store, rpc::Client& client, manager::LocalManager& manager, Hlc& hlc,
                 std::function<uint64_t()> self_load);
  ~ClusterRuntime() override;

  // Starts membership (probes, first round) and gossip, as the member
  // reachable at `address` (host:port). Reads the Lamport floor.
  // REQUIRES: called once, before any other input.
  Status Start(const std::string& address, uint64_t incarnation);
  // Stops timers and sending; pending work is dropped. Idempotent.
  void Stop();
  // Stop, and waits for a reconstruction scan in progress.
  void Join();

  // Inputs.
  void OnMessage(cluster::Message message);
  // The data path could not reach `node`.
  void Unreachable(NodeId node);
  // Operator removal. InvalidArgument for this node itself.
  Status Remove(NodeId node);
  // A load heard from `node` (request or reply headers, gossip).
  void ObserveLoad(NodeId node, uint64_t load);

  // Calls fn with every view installed from now on (on the strand; fn must
  // not block). REQUIRES: before Start.
  void AddViewObserver(std::function<void(const cluster::View&)> fn) {
    observers_.push_back(std::move(fn));
  }

  // Outputs.
  std::shared_ptr<const cluster::View> Current() const override;
  asio::awaitable<void> WaitNewer(cluster::Epoch epoch, std::chrono::milliseconds timeout) override;
  // The balancer's load of a node (this node: measured now).
  uint64_t LoadOf(NodeId node);
  uint64_t SelfLoad() const { return self_load_(); }
  const cluster::Member& self() const { return self_; }
  bool removed() const { return removed_.load(); }
  // The request header for a call made now (entry_epoch for bucket-scoped calls).
  rpc::RequestHeader Header(uint64_t entry_epoch = 0) const;
  // Fills a reply header with this node's view, load and `status`.
  void FillReply(const Status& status, rpc::ReplyHeader* h) const;
  rpc::Client& client() { return client_; }
  std::chrono::milliseconds rpc_timeout() const { return options_.rpc_timeout; }

  struct MemberStatus {
    cluster::Member member;
    std::string state;  // "up", "down" (known, not in the view), "removed"
    std::optional<uint64_t> load;
    uint32_t buckets = 0;
  };
  struct Status_ {
    cluster::Epoch epoch = 0;
    uint32_t buckets = 0;
    NodeId self = 0;
    bool removed = false;
    std::vector<MemberStatus> members;  // members first (by id), then the others
    uint64_t views_installed = 0;
    uint64_t announcements_sent = 0;
    uint64_t announcements_failed = 0;
    uint64_t epoch_floor_write_failures = 0;
  };
  Status_ status();
  // Finds a node by name, or by id in hex (8 digits) or decimal.
  std::optional<NodeId> Resolve(const std::string& name_or_id);

 private:
  int64_t NowMs() const;
  // Strand-only below.
  asio::awaitable<void> TimerLoop();
  void Nudge();  // wakes TimerLoop (its next timer may be earlier)
  asio::awaitable<void> GossipLoop();
  void Flush();
  void Persist();
  void Send(cluster::Outgoing out);
  void Publish(const cluster::View& view);
  // Scan thread.
  void Announce(std::shared_ptr<const cluster::View> view);
  asio::awaitable<void> SendChunks(NodeId manager, std::vector<manager::RebuildChunk> chunks);

  const ClusterRuntimeOptions options_;
  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  cluster::Member self_;  // address and incarnation set by Start
  store::Store& store_;
  rpc::Client& client_;
  manager::LocalManager& manager_;
  Hlc& hlc_;
  std::function<uint64_t()> self_load_;
  const std::chrono::steady_clock::time_point origin_;

  std::optional<cluster::Membership> membership_;  // strand only; set by Start
  uint32_t persisted_lamport_ = 0;                 // strand only
  bool persisting_ = false;                        // a floor write in flight; strand only
  std::vector<cluster::Outgoing> held_;            // waiting for the floor; strand only
  asio::steady_timer* timer_ = nullptr;            // TimerLoop's timer; strand only
  std::atomic<bool> stopped_{false};
  std::atomic<bool> removed_{false};
  std::vector<std::function<void(const cluster::View&)>> observers_;

  mutable std::mutex mu_;
  std::shared_ptr<const cluster::View> view_;  // guarded by mu_
  std::map<NodeId, cluster::Member> seen_;     // every node ever heard of; guarded by mu_
  cluster::LoadTable loads_;                   // guarded by mu_
  uint64_t views_installed_ = 0;               // guarded by mu_
  ChangeSignal view_changed_;                  // after view_ changed, and at Stop

  asio::thread_pool scan_pool_{1};     // reconstruction scans, one at a time
  asio::thread_pool persist_pool_{1};  // the epoch floor's synced writes
  std::atomic<uint64_t> persist_failures_{0};
  cluster::View announced_;  // scan thread only
  std::atomic<uint64_t> announcements_sent_{0};
  std::atomic<uint64_t> announcements_failed_{0};
};

}  // namespace porcupine::node
