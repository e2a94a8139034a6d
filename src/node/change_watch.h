// Whether a user's messages may have changed anywhere in the cluster, for
// the IMAP sessions of this node (DESIGN.md §6: IDLE sessions subscribe
// rather than ask every node at every poll).
//
// One watch per member (mail::FragmentStore::WatchVersions, a call that
// waits for a change) covers every user some session here is interested
// in; each report of a change bumps the user's counter. A session in IDLE
// that sees its counter unchanged, with every member watched, knows that no
// store holds anything new of the user's and skips its re-read. Users share
// version slots (store::Store::VersionSlotOf): a change of another user in
// the slot only costs a re-read. What the stores do not see (folder
// changes at the manager, UIDs still in flight) the session catches by a
// full re-read now and then (ImapBackend).
//
// Thread-safe.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "mail/fragments.h"
#include "manager/router.h"

namespace porcupine::node {

struct ChangeWatchOptions {
  // How long one watch call waits for a change (the callee caps it at 1 s).
  std::chrono::milliseconds wait{1000};
  // The least time between two watch calls to one member: changes within it
  // are reported together.
  std::chrono::milliseconds min_interval{50};
};

class ChangeWatch {
 public:
  // `nodes` and `views` must outlive the watch; its calls run on `ex`.
  ChangeWatch(const ChangeWatchOptions& options, mail::NodeDirectory& nodes,
              manager::ViewSource& views, asio::any_io_executor ex);
  ~ChangeWatch();

  void Start();
  void Stop();

  // One session's interest in a user, until the handle goes.
  class Interest {
   public:
    ~Interest();
    Interest(const Interest&) = delete;
    Interest& operator=(const Interest&) = delete;

   private:
    friend class ChangeWatch;
    Interest(ChangeWatch& w, uint32_t slot) : watch_(w), slot_(slot) {}
    ChangeWatch& watch_;
    uint32_t slot_;
  };
  std::unique_ptr<Interest> Watch(const std::string& user);

  // Grows with every change of the user's messages a member reported.
  uint64_t Changes(const std::string& user) const;
  // Every member of the current view is watched for the user right now (so
  // a change there would show in Changes soon).
  bool Armed(const std::string& user) const;

 private:
  struct Peer {
    std::map<uint32_t, uint64_t> known;  // slot → the version last reported
    std::set<uint32_t> armed;            // slots the last successful call covered
    std::chrono::steady_clock::time_point ok_at;
  };
  asio::awaitable<void> Supervise();
  asio::awaitable<void> PeerLoop(cluster::NodeId id);
  void Release(uint32_t slot);

  const ChangeWatchOptions options_;
  mail::NodeDirectory& nodes_;
  manager::ViewSource& views_;
  asio::any_io_executor ex_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::map<uint32_t, int> interest_;       // slot → interests; guarded by mu_
  std::map<uint32_t, uint64_t> changes_;   // slot → changes reported; guarded by mu_
  std::map<cluster::NodeId, Peer> peers_;  // members with a running loop; guarded by mu_
};

}  // namespace porcupine::node
