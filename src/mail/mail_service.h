// The mail service (DESIGN.md §3, §6): delivery and retrieval flows over the
// user managers (manager/router.h), the load balancer and the fragment
// stores. Protocol sessions reach it through the node glue; it knows no
// protocol.
//
// Thread-safe: all methods may be called concurrently.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster/balancer.h"
#include "core/hlc.h"
#include "core/memory_budget.h"
#include "core/status.h"
#include "mail/fragments.h"
#include "mail/login_gate.h"
#include "mail/recipients.h"
#include "manager/credentials.h"
#include "manager/router.h"

namespace porcupine::mail {

struct MailServiceOptions {
  std::vector<std::string> domains;  // local domains, lower case
  // Canonical address of the mailbox that gets every local domain's
  // postmaster mail (mail/recipients.h); "" = postmaster@<first domain>.
  std::string postmaster;
  int spread = 2;  // soft limit on nodes holding one user's mail
  int copies = 1;  // nodes a new message is stored on
  cluster::Policy policy = cluster::Policy::kDynamic;
  // The managers' settle window (manager::LocalManagerOptions): a message
  // younger than this may still hold back newer ones (FolderStatus::in_flight),
  // so deleting it releases its UID first.
  std::chrono::milliseconds uid_settle_window{5000};
  // Deliver's and Append's budget for the copies of a message that go to
  // another node's store: the request's copy of the body and its bytes on the
  // wire, two per store in flight (the body itself is its caller's; the SMTP
  // or IMAP session reserves it in the same budget). A delivery that cannot reserve them
  // fails with ResourceExhausted. nullptr: not limited. Must outlive the service.
  MemoryBudget* delivery_budget = nullptr;
};

enum class RecipientCheck {
  kLocalUser,       // deliverable
  kUnknownUser,     // local domain, no such user
  kNotLocalDomain,  // we are not a relay
  kTempFail,        // the user's manager is unreachable or still rebuilding
  kBadAddress,      // not a mailbox
};

// One message of an open mailbox and the nodes that listed it.
struct MailboxEntry {
  store::MessageId id;
  uint64_t size = 0;
  std::vector<NodeId> holders;
  uint32_t folder = store::kInboxFolder;
  uint32_t uid = 0;
  std::vector<std::string> flags;  // of the newest version listed
  int64_t internal_date_ms = 0;
  int32_t internal_date_zone = 0;  // minutes east of UTC it was given in (MessageMeta)
  uint64_t hlc = 0;                // that version
};

// A message's IMAP INTERNALDATE: the instant, and the zone a client gave it in.
struct InternalDate {
  int64_t ms = 0;    // since the epoch; 0 = now (Append)
  int32_t zone = 0;  // minutes east of UTC ("+0200" is 120); 0 = UTC
};

// One folder opened for IMAP: the manager's view of it and its messages.
struct FolderView {
  manager::FolderStatus status;
  std::vector<MailboxEntry> messages;  // ascending uid
  std::vector<NodeId> answered;        // the nodes that listed the folder
  // The lowest UID handed out whose message was not listed (still on its
  // way, FolderStatus::in_flight), 0 when none: messages above it are left
  // out, and status.uidnext is at most it, so that no client sees a UID
  // appear below one it has seen.
  uint32_t hold_from = 0;
  // With a ListingCache: nothing changed since the cached listing, and
  // `messages` is empty (the caller's last view of them holds).
  bool unchanged = false;
};

// What a session last listed of one folder on each node, so that a re-read
// only asks each node whether the user's messages there changed. A node
// whose last listing held messages is asked again even when the mail map
// dropped it (its fragment of the user emptied), so that its answer says
// they are gone.
struct ListingCache {
  uint32_t folder = 0;
  struct Part {
    uint64_t version = 0;
    std::vector<store::MessageMeta> messages;
  };
  std::map<NodeId, Part> parts;
  std::vector<NodeId> answered;              // the nodes that answered the last listing
  std::vector<manager::UidRange> in_flight;  // the folder's, at the last full merge
  uint32_t hold_from = 0;                    // as computed then
  // Set by each listing: the same nodes answered as last time (at least
  // one) and nothing changed on any (the listing's result is then empty).
  bool unchanged = false;
};

// Where new messages went (IMAP APPENDUID / COPYUID).
struct Placed {
  uint32_t uidvalidity = 0;
  std::vector<uint32_t> uids;
};

class MailService {
 public:
  // Every reference must outlive the service.
  MailService(const MailServiceOptions& options, manager::ManagerRouter& managers,
              manager::ViewSource& views, NodeDirectory& nodes, manager::Credentials& credentials,
              LoginGate& logins, Hlc& hlc);

  // Classifies an RCPT address.
  asio::awaitable<RecipientCheck> CheckRecipient(std::string address);

  // How a delivery went, beyond its Status.
  struct DeliveryReport {
    // The delivery failed, yet some copy may be durable: a store succeeded
    // for some recipients but not for others, or a store's outcome is
    // unknown (a timeout, a connection lost mid-call). The client retries
    // after the 4xx and the mailbox may get the message twice. (A store
    // that committed and then failed to announce itself to the manager
    // reports a plain error and is not counted: LocalFragments::Store does
    // not tell it apart.)
    bool maybe_stored = false;
    // Copies stored when OK: one per distinct mailbox.
    size_t copies = 0;
  };
  // Stores `message` for every recipient (raw addresses already accepted by
  // CheckRecipient; recipients that reach the same mailbox get one copy).
  // OK only when every copy is durable and findable; on any error the client
  // must retry (duplicates are possible then, loss is not). Unavailable when
  // no node can take the mail now. `report` (optional) is filled in.
  asio::awaitable<Status> Deliver(std::vector<std::string> recipients, std::string message,
                                  DeliveryReport* report = nullptr);

  // Authenticates `login` like Authenticate and lists the user's mailbox,
  // merged over every fragment node in parallel, de-duplicated by message
  // id, oldest first. Nodes that fail are skipped (a partial mailbox, never
  // an error). *user_out gets the canonical address.
  asio::awaitable<Result<std::vector<MailboxEntry>>> OpenMailbox(std::string login,
                                                                 std::string password,
                                                                 std::string* user_out,
                                                                 std::string client = "");
  // The message body from the least loaded holder that has it.
  asio::awaitable<Result<std::string>> ReadMessage(std::string user, MailboxEntry entry);
  // Durably deletes the messages on every node that holds them.
  // REQUIRES: every entry is of one folder.
  asio::awaitable<Status> DeleteMessages(std::string user, std::vector<MailboxEntry> entries);

  // ---- IMAP: folders, UIDs and flags (DESIGN.md §6 "IMAP specifics") ----

  // Checks the password of `login` (an address, or a local part of the first
  // domain) for a client at `client` (net::ClientKey; "" when unknown)
  // through the login throttle (LoginGate): the canonical address;
  // PermissionDenied on a wrong password or an unknown user (which costs the
  // same time); ResourceExhausted when the client's address or the account
  // is locked after too many failures (POP3 -ERR [SYS/TEMP], IMAP
  // NO [UNAVAILABLE], SMTP AUTH 454 4.7.0); Unavailable when the user's
  // manager cannot be asked. Failures may be answered late (the throttle's
  // delay): every protocol's password check goes through here.
  asio::awaitable<Result<std::string>> Authenticate(std::string login, std::string password,
                                                    std::string client = "");
  // SCRAM-SHA-256 (node/scram.h) for `login` from `client`, the same path as
  // Authenticate around a check that GNU SASL does: BeginScram admits the
  // login through the throttle (ResourceExhausted when locked) and finds the
  // user's SCRAM secrets (Unavailable: the manager cannot be asked). An
  // unknown user (or a login in no local domain) is no error: `user` and
  // `secrets` are empty, and the caller fails the exchange like a wrong
  // password. FinishScram counts the outcome like Authenticate's check and
  // waits out the throttle's delay; ResourceExhausted when it locked.
  struct ScramAccount {
    std::string account;  // the throttle's key
    std::string user;     // canonical address; "" when unknown
    std::string secrets;  // store Profile.scram_sha256; "" when none
  };
  asio::awaitable<Result<ScramAccount>> BeginScram(std::string login, std::string client);
  asio::awaitable<Status> FinishScram(std::string client, std::string account, bool success);
  // The inbox listing of OpenMailbox, without a password check: for a user
  // a SCRAM exchange authenticated. REQUIRES: the caller authenticated it.
  asio::awaitable<Result<std::vector<MailboxEntry>>> ListMaildrop(std::string user);
  // Reads or changes the user's folders at the manager.
  asio::awaitable<Result<manager::FolderState>> Folders(std::string user, manager::FolderOp op);
  // The folder's status and its messages over every fragment node (a
  // partial folder when some do not answer). NotFound: no such folder.
  // `claim_recent`: the messages shown that no session claimed as \Recent
  // yet (status.recent_from on) become the caller's; one still on its way
  // (held back, or not stored yet) is left for the read that shows it. Messages sharing a UID
  // (after a partition) are renumbered first: the lower message id keeps it.
  // `cache` (optional, the caller's): nodes where nothing changed since the
  // cached listing answer without listing again, and the nodes that held
  // messages at the cached listing are asked too (ListingCache). Messages above
  // FolderView::hold_from are left out unless `shown` (optional) says the
  // caller shows them already.
  asio::awaitable<Result<FolderView>> OpenFolder(
      std::string user, std::string folder, bool claim_recent = false,
      ListingCache* cache = nullptr, std::function<bool(const store::MessageId&)> shown = nullptr);
  // Gives the messages of `folder` new UIDs above `above`, in their old
  // order: the manager hands them out, each message's coordinating holder
  // applies the change if the message still has the UID it was listed with.
  asio::awaitable<Status> Renumber(std::string user, std::string folder,
                                   std::vector<MailboxEntry> entries, uint32_t above);
  // Stores a new message in `folder` under the next UID, dated `date` (its
  // zone kept). NotFound: no such folder; ResourceExhausted: the copies to
  // another node's store did not fit MailServiceOptions::delivery_budget.
  asio::awaitable<Result<Placed>> Append(std::string user, std::string folder,
                                         std::vector<std::string> flags, InternalDate date,
                                         std::string message);
  // Copies the messages (with their flags and dates) to `to` under new UIDs,
  // in the given order; with `move`, then deletes the originals at their
  // coordinating holders. Of two racing moves of one message only one
  // deletes it; the other deletes its copy again and leaves that UID out
  // (Aborted when it moved none).
  asio::awaitable<Result<Placed>> Copy(std::string user, std::vector<MailboxEntry> entries,
                                       std::string to, bool move);
  // Applies one flag change (replace, add or remove `flags`) to every
  // message, on every replica.
  asio::awaitable<Status> SetFlags(std::string user, std::vector<MailboxEntry> entries,
                                   FlagChange::Mode mode, std::vector<std::string> flags);
  // Deletes every message of the user (admin "user del").
  asio::awaitable<Status> DeleteAllMail(std::string user);

  // Counters for metrics.
  struct Stats {
    uint64_t messages_stored = 0;  // message copies stored (one per recipient)
    uint64_t bytes_stored = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    NewMessage message;
    std::vector<NodeId> mail_map;
  };
  bool IsLocalDomain(std::string_view domain) const;
  // Authenticate's check; the user's info (mail map) and *user_out the
  // canonical address on success.
  asio::awaitable<Result<manager::UserInfo>> CheckLogin(std::string login, std::string password,
                                                        std::string client, std::string* user_out);
  std::vector<NodeId> ChooseNodes(const std::string& user, const std::vector<NodeId>& mail_map,
                                  const std::vector<NodeId>& exclude);
  // Applies each change at the entry's coordinating holder (lowest id first).
  struct Coordinated {
    std::set<store::MessageId> changed;  // ids a holder reported changed by this call
    std::set<store::MessageId> unsure;   // ids a holder may have changed without answering
  };
  asio::awaitable<Result<Coordinated>> Coordinate(
      std::string user, std::vector<std::pair<MailboxEntry, FlagChange>> changes);
  // A store's Status, and whether the copies may be durable despite an
  // error (DeliveryReport::maybe_stored).
  struct Stored {
    Status status;
    bool maybe_stored = false;
  };
  // `budget` (optional): reserves the copies of a store on another node
  // (MailServiceOptions::delivery_budget).
  asio::awaitable<Stored> StoreOn(NodeId node, std::vector<Pending> batch,
                                  std::shared_ptr<const std::string> body,
                                  MemoryBudget* budget = nullptr);
  // `answered` (optional) gets the nodes that listed the folder; `cache`
  // (optional) is used and updated as in OpenFolder; when nothing changed
  // the result is empty unless `merge_unchanged` (the cached listings then).
  asio::awaitable<std::vector<MailboxEntry>> ListEverywhere(std::string user,
                                                            std::vector<NodeId> nodes,
                                                            uint32_t folder,
                                                            std::vector<NodeId>* answered = nullptr,
                                                            ListingCache* cache = nullptr,
                                                            bool merge_unchanged = false);
  asio::awaitable<Result<Listing>> ListOn(NodeId node, std::string user, uint32_t folder,
                                          uint64_t if_changed);
  // Adds to `nodes` (the mail map) every node whose cached listing held
  // messages, and drops the cached listings of the nodes not asked now.
  static void AskPastHolders(ListingCache& cache, std::vector<NodeId>& nodes);
  // Places one message for `user` in the folder of `where` under `uid`
  // (step 3–6 of delivery), into per_node.
  void Place(const std::string& user, const manager::FolderState& where, uint32_t uid,
             std::vector<std::string> flags, InternalDate date, uint64_t size,
             std::map<NodeId, std::vector<Pending>>& per_node);
  // Stores every node's batch in parallel; maybe_stored when it failed
  // after some batch was stored or with an outcome unknown.
  asio::awaitable<Stored> StoreAll(std::map<NodeId, std::vector<Pending>> per_node,
                                   std::shared_ptr<const std::string> body,
                                   MemoryBudget* budget = nullptr);
  // Claims the unclaimed messages of `view` (OpenFolder's claim_recent) and
  // sets view.status.recent_from to the first UID claimed for the caller.
  asio::awaitable<void> ClaimShown(const std::string& user, FolderView& view);
  // Tells the manager that `uids` of the folder will not be listed (a
  // failed store, a message going away); best effort.
  asio::awaitable<void> ReleaseUids(std::string user, uint32_t folder, std::vector<uint32_t> uids);
  // Releases the UIDs of the entries young enough to be in flight still.
  asio::awaitable<void> ReleaseYoung(const std::string& user,
                                     const std::vector<MailboxEntry>& entries);
  // Holders with this node first, then by load.
  void SortHolders(std::vector<NodeId>& holders);
  store::MessageId NewMessageId();

  const MailServiceOptions options_;
  const RecipientRules rules_;
  manager::ManagerRouter& managers_;
  manager::ViewSource& views_;
  NodeDirectory& nodes_;
  manager::Credentials& credentials_;
  LoginGate& logins_;
  Hlc& hlc_;

  mutable std::mutex mu_;
  std::mt19937_64 rng_;      // guarded by mu_
  uint32_t id_counter_ = 0;  // guarded by mu_
  Stats stats_;              // guarded by mu_
};

}  // namespace porcupine::mail
