// Conversions between the deterministic core's types (cluster/, manager/)
// and their wire messages (rpc/cluster.proto). Decoding is defensive: a peer
// may send anything, so malformed input gives InvalidArgument, never a crash.
#pragma once

#include "cluster/membership.h"
#include "core/status.h"
#include "manager/soft_state.h"
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

// Status in a reply header, and back.
void SetStatus(const Status& s, ReplyHeader* h);
Status StatusOf(const ReplyHeader& h);

}  // namespace porcupine::rpc
