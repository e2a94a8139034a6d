// The user manager role (DESIGN.md §6): for the buckets a node manages it
// holds each user's soft state — profile and mail map — and answers lookups,
// applies mail-map updates and serializes changes to profiles. Callers reach
// the manager of a user through ManagerRouter (manager/router.h), which works
// the same whether the manager is this node or another (over RPC).
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/user_map.h"
#include "core/status.h"
#include "store/records.pb.h"

namespace porcupine::manager {

using cluster::NodeId;

struct UserInfo {
  std::string user;              // canonical address
  std::vector<NodeId> mail_map;  // members holding fragments of the user's mail, sorted
  std::string password_hash;     // only when asked for (LookupUser with_credentials)
  std::string scram_sha256;      // the same; "" when the password has no SCRAM secrets
};

// What setting a password stores in the profile: the argon2id hash and the
// SCRAM-SHA-256 secrets (store Profile.scram_sha256; "" for none).
struct PasswordSecrets {
  PasswordSecrets() = default;
  PasswordSecrets(std::string hash, std::string scram = {})  // NOLINT: a bare hash converts
      : password_hash(std::move(hash)), scram_sha256(std::move(scram)) {}
  PasswordSecrets(const char* hash) : password_hash(hash) {}  // NOLINT
  std::string password_hash;
  std::string scram_sha256;
};

enum class UserOpKind { kCreate, kSetPassword, kDelete };

// Consecutive UIDs [first, first + count).
struct UidRange {
  uint32_t first = 0;
  uint32_t count = 0;
  bool operator==(const UidRange&) const = default;
};

// A change of a user's folders, or a block of UIDs for one folder (IMAP,
// DESIGN.md §6 "IMAP specifics"): serialized at the manager, so that one
// mailbox has one order and no UID is handed out twice.
struct FolderOp {
  enum class Kind {
    kRead,
    kCreate,
    kDelete,
    kRename,
    kSubscribe,
    kUnsubscribe,
    kAllocateUids,
    kClaimRecent,  // the folder's unclaimed UIDs (below `below`) become the caller's \Recent ones
    kReleaseUids,  // UIDs handed out that will not be used (a store that failed)
  };
  FolderOp() = default;
  FolderOp(Kind k, std::string n, std::string t = {}, uint32_t c = 0)
      : kind(k), name(std::move(n)), to(std::move(t)), count(c) {}
  // `min_uid`: every new UID is at least this one; with count 0 the
  // sequencer only moves up to it (a listing found UIDs it never handed out,
  // e.g. after a partition).
  static FolderOp Allocate(std::string folder, uint32_t count, uint32_t min_uid = 0) {
    FolderOp op{Kind::kAllocateUids, std::move(folder), {}, count};
    op.min_uid = min_uid;
    return op;
  }
  // The folder's UIDs from its \Recent horizon up to `below` (exclusive;
  // at most every UID handed out, all of them when 0) become the caller's
  // \Recent messages: a session claims only the messages it shows, so that
  // one still on its way is claimed by the session that shows it first. The
  // reply's FolderStatus::recent_from is the horizon before the claim.
  static FolderOp ClaimRecent(std::string folder, uint32_t below) {
    FolderOp op{Kind::kClaimRecent, std::move(folder)};
    op.below = below;
    return op;
  }
  // UIDs of the folder with id `folder_id` handed out that no message
  // holds any more, or never will (a store that failed, a message deleted):
  // they no longer hold back newer messages (FolderStatus::in_flight).
  static FolderOp Release(uint32_t folder_id, std::vector<UidRange> uids) {
    FolderOp op{Kind::kReleaseUids, {}};
    op.folder_id = folder_id;
    op.uids = std::move(uids);
    return op;
  }

  Kind kind = Kind::kRead;
  std::string name;            // the folder; "INBOX" in any case is the inbox
  std::string to;              // kRename: the new name
  std::string special_use;     // kCreate: "\\Sent" etc. or empty
  uint32_t count = 0;          // kAllocateUids: how many consecutive UIDs
  uint32_t min_uid = 0;        // kAllocateUids: the lowest UID to hand out
  uint32_t below = 0;          // kClaimRecent: claim the UIDs below this one (0: all)
  uint32_t folder_id = 0;      // kReleaseUids: the folder (`name` is not used)
  std::vector<UidRange> uids;  // kReleaseUids
};

// One folder as the manager knows it.
struct FolderStatus {
  store::Folder folder;  // id, name, uidvalidity, special use, subscription
  uint32_t uidnext = 1;  // every UID in the folder is below this one
  // \Recent (IMAP): UIDs from here on were not claimed by a session yet
  // (soft state: after a manager change nothing older is recent).
  uint32_t recent_from = 1;
  // UIDs handed out in the last settle window (LocalManagerOptions), oldest
  // first: their messages may still be on their way to the stores. A reader
  // shows nothing above one of them it does not find yet, so that a client
  // never sees a UID appear below one it has seen (soft state, like \Recent).
  std::vector<UidRange> in_flight;
};

struct FolderState {
  std::vector<FolderStatus> folders;  // every folder of the user, sorted by name
  std::vector<NodeId> mail_map;       // as in UserInfo
  uint32_t folder_id = 0;             // the folder the op named (after a rename: the new one)
  uint32_t uidvalidity = 0;           // of that folder
  uint32_t first_uid = 0;             // kAllocateUids: the first of `count` new UIDs
};

// One node's manager role, local or remote. Every call names the epoch of
// the user's bucket entry in the caller's view. Errors common to all calls:
// Aborted when this node does not manage the bucket under that assignment
// (the views differ: retry once they agree); Unavailable when the node cannot
// be reached, or the bucket is still being rebuilt past the wait bound.
class UserManager {
 public:
  virtual ~UserManager() = default;
  // NotFound when the user does not exist.
  virtual asio::awaitable<Result<UserInfo>> LookupUser(std::string user, uint64_t entry_epoch,
                                                       bool with_credentials) = 0;
  // Records that `node` holds (add) or no longer holds fragments of `user`'s
  // mail, as of the node's clock `stamp` (manager/soft_state.h).
  virtual asio::awaitable<Status> UpdateMailMap(std::string user, NodeId node, bool add,
                                                uint64_t stamp, uint64_t entry_epoch) = 0;
  // Creates the user (AlreadyExists if it exists), changes its password or
  // deletes it (NotFound if it does not exist). Durable on this node and
  // written to the other nodes' profile replicas when OK. `secrets` (kCreate,
  // kSetPassword): a crypto_pwhash string and the SCRAM secrets, both
  // replacing what the profile had.
  virtual asio::awaitable<Status> ManageUser(UserOpKind kind, std::string user,
                                             PasswordSecrets secrets, uint64_t entry_epoch) = 0;
  // The users of every bucket the node manages, sorted.
  virtual asio::awaitable<Result<std::vector<std::string>>> ListUsers() = 0;
  // Reads or changes the user's folders (FolderOp). NotFound for an unknown
  // user or folder, AlreadyExists when a created or renamed-to name exists,
  // InvalidArgument for a bad name, FailedPrecondition for the inbox (it
  // cannot be deleted or renamed). Changes are durable on this node and
  // written to the profile's replicas when OK.
  virtual asio::awaitable<Result<FolderState>> Folders(std::string user, FolderOp op,
                                                       uint64_t entry_epoch) = 0;
};

}  // namespace porcupine::manager
