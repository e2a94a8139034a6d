// Conversions between the deterministic core's types (cluster/, manager/)
// and their wire messages (rpc/cluster.proto). Decoding is defensive: a peer
// may send anything, so malformed input gives InvalidArgument, never a crash.
#pragma once

#include <utility>
#include <vector>

#include "cluster/membership.h"
#include "core/status.h"
#include "mail/fragments.h"
#include "manager/soft_state.h"
#include "manager/user_manager.h"
#include "replication/anti_entropy.h"
#include "rpc/cluster.pb.h"

namespace porcupine::rpc {

void ToProto(const cluster::View& v, ViewP* out);
// InvalidArgument unless members are sorted and unique, the map has
// `buckets` entries and every manager is a member (an empty view, epoch 0,
// is allowed with any map).
Result<cluster::View> FromProto(const ViewP& p, uint32_t buckets);

void ToProto(const cluster::Message& m, MembershipMessage* out);
Result<cluster::Message> FromProto(const MembershipMessage& p, uint32_t buckets);

void ToProto(const manager::RebuildChunk& c, RebuildChunkP* out);
Result<manager::RebuildChunk> FromProto(const RebuildChunkP& p, uint32_t buckets);

void ToProto(const replication::Item& i, ObjectP* out);
replication::Item FromProto(const ObjectP& p);

// The requests of the data path, decoded as ClusterService hands them on.
// Each fails with InvalidArgument on what the callee must refuse, and never
// crashes on anything a peer sends (fuzzed: src/rpc/fuzz/peer_fuzz.cc).

// StoreMessages: every message has a user, a well-formed id and the size of
// the shared body.
Result<std::vector<mail::NewMessage>> FromProto(const StoreRequest& p);
// DeleteMessages: every id well-formed.
Result<std::vector<store::MessageId>> FromProto(const DeleteRequest& p);
// SetFlags: every id well-formed and every mode known.
Result<std::vector<mail::FlagChange>> FromProto(const FlagsRequest& p);
// WatchVersions: as many versions as slots, at most Store::kVersionSlots.
// (The slot numbers themselves are checked by the store.)
Result<std::vector<mail::SlotVersion>> FromProto(const WatchRequest& p);
// Folders: an unknown kind reads. Never fails.
manager::FolderOp FromProto(const FolderRequest& p);
// ManageUser: an unknown kind creates (proto3's default). Never fails.
manager::UserOpKind FromProto(UserOp::Kind kind);
// Replicate: a user, a known kind, a message body of the size the metadata
// says (none for a tombstone), a profile of the same user.
Status Validate(const ReplicaUpdate& p);
// Retire: the objects and the versions that reached every target.
std::vector<std::pair<replication::ObjectRef, uint64_t>> FromProto(const RetireRequest& p);
// The folder a request names: 0 on the wire is INBOX.
inline uint32_t FolderOf(uint32_t wire) { return wire == 0 ? store::kInboxFolder : wire; }

// Status in a reply header, and back.
void SetStatus(const Status& s, ReplyHeader* h);
Status StatusOf(const ReplyHeader& h);

}  // namespace porcupine::rpc
