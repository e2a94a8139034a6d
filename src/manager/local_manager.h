// The manager role as it runs on this node: SoftState (manager/soft_state.h)
// for the buckets this node manages, fed by the view changes and rebuild
// announcements the node receives, answering lookups with a bounded wait
// while a bucket is rebuilt, and serializing profile changes.
//
// Thread-safe: all methods may run concurrently; state is behind one mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "core/change_signal.h"
#include "core/hlc.h"
#include "manager/soft_state.h"
#include "manager/user_manager.h"
#include "store/records.pb.h"

namespace porcupine::manager {

// Writes a profile to its replicas (every node keeps every profile, so that
// each side of a partition knows every user). OK once the write is durable on
// this node; copies that cannot be written now are reported, not fatal.
class ProfileWriter {
 public:
  virtual ~ProfileWriter() = default;
  virtual asio::awaitable<Status> Write(store::Profile profile) = 0;
};

struct LocalManagerOptions {
  NodeId self = 0;
  uint32_t buckets = 256;
  // A lookup of a user not (yet) known in a bucket still being rebuilt waits
  // this long for the rebuild before answering Unavailable (never a false
  // "no such user").
  std::chrono::milliseconds rebuild_wait{1000};
  // How long UIDs handed out count as in flight (FolderStatus::in_flight)
  // unless released: longer than a store of their messages can take (the
  // data-path deadline with its retries). A message stored later still
  // shows, after ones above it; an open IMAP session renumbers it then.
  std::chrono::milliseconds uid_settle_window{5000};
  // In-flight ranges kept per folder at most; the oldest are forgotten first.
  size_t max_in_flight_per_folder = 1024;
  SoftStateOptions soft_state;
  // The clock of the settle window; steady_clock when empty (tests set it).
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class LocalManager : public UserManager {
 public:
  // writer and hlc must outlive the manager.
  LocalManager(const LocalManagerOptions& options, ProfileWriter& writer, Hlc& hlc);

  // Whether this node can tell that a user does not exist. A node whose
  // data directory is new (or was wiped) and that has other nodes to meet
  // knows no users until a peer's reconstruction reached it: until then an
  // unknown user is Unavailable (SMTP 451), never a false NotFound (550).
  // `learned` runs once when the first peer's announcements arrive.
  void SetPopulationKnown(bool known, std::function<void()> learned = {});
  bool population_known() const { return population_known_.load(); }

  // Inputs from the cluster driver.
  void InstallView(const cluster::View& view);
  void ApplyRebuild(NodeId from, const RebuildChunk& chunk);
  // A profile replica written here by another node's manager: kept if this
  // node manages the user (newest wins).
  void OfferProfile(const store::Profile& profile);

  asio::awaitable<Result<UserInfo>> LookupUser(std::string user, uint64_t entry_epoch,
                                               bool with_credentials) override;
  asio::awaitable<Status> UpdateMailMap(std::string user, NodeId node, bool add, uint64_t stamp,
                                        uint64_t entry_epoch) override;
  asio::awaitable<Status> ManageUser(UserOpKind kind, std::string user, PasswordSecrets secrets,
                                     uint64_t entry_epoch) override;
  asio::awaitable<Result<std::vector<std::string>>> ListUsers() override;
  asio::awaitable<Result<FolderState>> Folders(std::string user, FolderOp op,
                                               uint64_t entry_epoch) override;

  struct Stats {
    size_t users = 0;
    uint32_t buckets_managed = 0;
    uint32_t buckets_rebuilding = 0;
    cluster::Epoch view_epoch = 0;
  };
  Stats stats();
  // True when a view is installed and every bucket this node manages is
  // rebuilt (/readyz).
  bool Ready();

 private:
  // Find with the bounded wait for a rebuilding bucket. Copies the profile.
  struct Found {
    SoftState::State state;
    std::optional<store::Profile> profile;
    std::vector<NodeId> mail_map;
  };
  asio::awaitable<Found> FindWaiting(const std::string& user, uint64_t entry_epoch);
  static Status ErrorOf(SoftState::State state, const std::string& user);
  // ErrorOf, with NotFound turned into Unavailable while the population is unknown.
  Status LookupErrorOf(SoftState::State state, const std::string& user) const;
  // Marks `user` as changing (changing_), waiting up to `wait` for another
  // change of the user to end; false when it did not.
  asio::awaitable<bool> BeginChange(const std::string& user, std::chrono::milliseconds wait);
  void EndChange(const std::string& user);
  // The next UID a new block for the folder would start at, and the UIDs
  // this manager may still hand out without a reservation.
  struct InFlight {
    UidRange uids;
    std::chrono::steady_clock::time_point expires;
  };
  struct UidBlock {
    uint64_t entry_epoch = 0;  // the assignment the block was reserved under
    uint32_t next = 1;
    uint32_t limit = 1;              // UIDs in [next, limit) are reserved in the profile
    uint32_t recent = 1;             // UIDs from here on are not claimed as \Recent yet
    std::deque<InFlight> in_flight;  // ascending by UID and by expiry
  };
  // REQUIRES: mu_ held.
  uint32_t UidNextLocked(const std::string& user, const store::Folder& folder, uint64_t epoch);
  // The folder's sequencer after handing out `uids` under `epoch` (the
  // block is [next, limit), the \Recent horizon `recent`). REQUIRES: mu_ held.
  void HandedOutLocked(const std::string& user, uint32_t folder, uint64_t epoch, uint32_t next,
                       uint32_t limit, uint32_t recent, UidRange uids);
  // Drops the expired in-flight ranges. REQUIRES: mu_ held.
  void ExpireLocked(UidBlock& block);
  // Drops `gone` from the in-flight ranges. REQUIRES: mu_ held.
  static void Release(UidBlock& block, UidRange gone);
  std::chrono::steady_clock::time_point Now() const;
  // A seed for new folder ids (store::NewFolderId): this node and `now`
  // (its hybrid clock), so no other manager draws the same.
  uint64_t FolderSeed(uint64_t now) const;
  FolderState StateOf(const store::Profile& profile, std::vector<NodeId> mail_map, uint64_t epoch);

  const LocalManagerOptions options_;
  ProfileWriter& writer_;
  Hlc& hlc_;
  std::mutex mu_;
  SoftState state_;                 // guarded by mu_
  std::set<std::string> changing_;  // users with a profile change in flight; guarded by mu_
  ChangeSignal change_ended_;       // after a user leaves changing_
  ChangeSignal rebuilt_;            // after a view or a rebuild chunk changed state_
  std::atomic<bool> population_known_{true};
  std::function<void()> learned_;  // guarded by mu_
  // The UID sequencers of the folders this node manages (soft state: a block
  // reserved under an older assignment of the bucket is never reused).
  std::map<std::pair<std::string, uint32_t>, UidBlock> uids_;  // guarded by mu_
};

}  // namespace porcupine::manager
