// libFuzzer target for what another node sends (rpc/cluster.proto): every
// request and the replies' status, decoded as ClusterService does
// (rpc/convert.h), and the decoded membership messages, rebuild chunks,
// mail-map updates and profiles fed to the deterministic machines the
// daemon runs on them: cluster::Membership and manager::SoftState. A peer
// may be broken, old or hostile; nothing it sends may crash the node.
//
// Input: records of [kind byte][length, 2 bytes little-endian][payload];
// kind % 16 picks the message type the payload is parsed as (a payload that
// is not a valid protobuf is dropped, as gRPC does), kind / 16 advances the
// clock by that many 100 ms steps (timers fire: rounds, pings, commits).
// Checks, beyond "no crash, no sanitizer report":
//  - a decoded membership message or rebuild chunk encodes back to a message
//    that decodes to the same thing;
//  - every message Membership sends decodes on the receiving side (a node
//    must never send what its peers refuse);
//  - the installed view keeps its invariants (members sorted and unique,
//    every bucket's manager a member).
//
// Built by CMake as rpc_peer_fuzz (`make fuzz`, clang) and replayed over its
// corpus by the test fuzz_replay.rpc_peer_fuzz in every build
// (docs/fuzzing.md):
//   build-fuzz/rpc_peer_fuzz src/rpc/fuzz/corpus
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cluster/membership.h"
#include "manager/soft_state.h"
#include "rpc/client.h"
#include "rpc/convert.h"

namespace {

namespace rpc = porcupine::rpc;
namespace cluster = porcupine::cluster;
namespace manager = porcupine::manager;

constexpr uint32_t kBuckets = 8;
constexpr cluster::NodeId kSelf = 1;

std::string Encode(const google::protobuf::MessageLite& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  return out;
}

template <typename P>
bool Parse(std::string_view bytes, P* p) {
  return p->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

void CheckView(const cluster::View& v) {
  for (size_t i = 1; i < v.members.size(); ++i) {
    if (v.members[i - 1].id >= v.members[i].id) std::abort();
  }
  if (v.epoch == 0) return;
  for (uint32_t b = 0; b < v.user_map.buckets(); ++b) {
    if (!v.Contains(v.user_map.ManagerOf(b))) std::abort();
  }
}

// The node under attack: the two deterministic machines a peer's messages
// reach, driven as ClusterRuntime and LocalManager drive them.
class Node {
 public:
  Node() : membership_(Options(), Self(), {"n2:7000", "n3:7000"}, 42), soft_(kSelf, kBuckets) {
    membership_.Start(now_);
    Drain();
  }

  void Advance(int64_t ms) {
    now_ += ms;
    if (membership_.NextTimerMs() <= now_) membership_.OnTick(now_);
    Drain();
  }

  void Membership(const rpc::MembershipMessage& p) {
    porcupine::Result<cluster::Message> m = rpc::FromProto(p, kBuckets);
    if (!m.ok()) return;
    rpc::MembershipMessage again;
    rpc::ToProto(*m, &again);
    porcupine::Result<cluster::Message> m2 = rpc::FromProto(again, kBuckets);
    if (!m2.ok()) std::abort();
    rpc::MembershipMessage third;
    rpc::ToProto(*m2, &third);
    if (Encode(again) != Encode(third)) std::abort();
    membership_.OnMessage(now_, *m);
    Drain();
  }

  void Rebuild(const rpc::RebuildChunkP& p) {
    porcupine::Result<manager::RebuildChunk> c = rpc::FromProto(p, kBuckets);
    if (!c.ok()) return;
    rpc::RebuildChunkP again;
    rpc::ToProto(*c, &again);
    again.set_view_epoch(c->view_epoch);
    porcupine::Result<manager::RebuildChunk> c2 = rpc::FromProto(again, kBuckets);
    if (!c2.ok()) std::abort();
    rpc::RebuildChunkP third;
    rpc::ToProto(*c2, &third);
    if (Encode(again) != Encode(third)) std::abort();
    soft_.ApplyRebuild(p.header().from(), *c);
  }

  void MailMap(const rpc::MailMapUpdate& p) {
    if (p.node() != p.header().from()) return;  // ClusterService refuses these
    if (p.add()) {
      soft_.MailMapAdd(p.user(), p.node(), p.stamp(), p.header().entry_epoch());
    } else {
      soft_.MailMapRemove(p.user(), p.node(), p.stamp(), p.header().entry_epoch());
    }
  }

  void Replicate(const rpc::ReplicaUpdate& p) {
    if (!rpc::Validate(p).ok()) return;
    if (p.kind() == static_cast<uint32_t>(porcupine::replication::ObjectRef::Kind::kProfile)) {
      soft_.PutProfile(p.profile(), soft_.EntryEpochOf(p.profile().user()));
    }
  }

  void Lookup(const rpc::LookupRequest& p) {
    (void)soft_.Find(p.user(), p.header().entry_epoch());
    (void)soft_.Users();
  }

 private:
  static cluster::MembershipOptions Options() {
    cluster::MembershipOptions o;
    o.buckets = kBuckets;
    return o;
  }
  static cluster::Member Self() { return {kSelf, 1, "n1:7000", "n1"}; }

  // What the daemon does after every input: send the outbox (each message
  // must be one its receiver accepts) and install a new view.
  void Drain() {
    for (const cluster::Outgoing& out : membership_.TakeOutbox()) {
      rpc::MembershipMessage p;
      rpc::ToProto(out.message, &p);
      rpc::MembershipMessage wire;
      if (!Parse(Encode(p), &wire) || !rpc::FromProto(wire, kBuckets).ok()) std::abort();
    }
    CheckView(membership_.view());
    if (membership_.TakeViewChanged() && membership_.view().Contains(kSelf)) {
      soft_.InstallView(membership_.view());
    }
  }

  int64_t now_ = 1000;
  cluster::Membership membership_;
  manager::SoftState soft_;
};

// Decodes `bytes` as message type `type` the way the receiving node does;
// false when it is not a valid message of that type.
bool Deliver(Node& node, uint8_t type, std::string_view bytes) {
  switch (type) {
    case 0: {
      rpc::MembershipMessage p;
      if (!Parse(bytes, &p)) return false;
      node.Membership(p);
      return true;
    }
    case 1: {
      rpc::RebuildChunkP p;
      if (!Parse(bytes, &p)) return false;
      node.Rebuild(p);
      return true;
    }
    case 2: {
      rpc::MailMapUpdate p;
      if (!Parse(bytes, &p)) return false;
      node.MailMap(p);
      return true;
    }
    case 3: {
      rpc::ReplicaUpdate p;
      if (!Parse(bytes, &p)) return false;
      node.Replicate(p);
      return true;
    }
    case 4: {
      rpc::LookupRequest p;
      if (!Parse(bytes, &p)) return false;
      node.Lookup(p);
      return true;
    }
    case 5: {
      rpc::StoreRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      return true;
    }
    case 6: {
      rpc::DeleteRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      (void)rpc::FolderOf(p.folder());
      return true;
    }
    case 7: {
      rpc::FlagsRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      return true;
    }
    case 8: {
      rpc::WatchRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      return true;
    }
    case 9: {
      rpc::FolderRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      return true;
    }
    case 10: {
      rpc::UserOp p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p.kind());
      return true;
    }
    case 11: {
      rpc::RetireRequest p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::FromProto(p);
      return true;
    }
    case 12: {
      rpc::AntiEntropyCompareRequest p;
      if (!Parse(bytes, &p)) return false;
      for (const rpc::ObjectP& o : p.items()) {
        rpc::ObjectP again;
        rpc::ToProto(rpc::FromProto(o), &again);
        (void)again;
      }
      return true;
    }
    case 13: {
      rpc::FolderReply p;  // the largest reply: its status is what the caller reads first
      if (!Parse(bytes, &p)) return false;
      (void)rpc::StatusOf(p.header());
      return true;
    }
    case 14: {
      rpc::ReplicaAck p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::StatusOf(p.header());
      return true;
    }
    default: {
      rpc::AntiEntropyCompareReply p;
      if (!Parse(bytes, &p)) return false;
      (void)rpc::StatusOf(p.header());
      for (const rpc::ObjectP& o : p.want()) (void)rpc::FromProto(o);
      return true;
    }
  }
}

}  // namespace

// protobuf logs every string field with invalid UTF-8 it refuses to parse:
// millions of lines in a run, and the time to write them.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Node node;
  size_t pos = 0;
  while (size - pos >= 3) {
    const uint8_t kind = data[pos];
    size_t len = data[pos + 1] | (static_cast<size_t>(data[pos + 2]) << 8);
    pos += 3;
    len = std::min(len, size - pos);
    node.Advance(100 * (kind >> 4));
    (void)Deliver(node, kind & 0x0f,
                  std::string_view(reinterpret_cast<const char*>(data) + pos, len));
    pos += len;
  }
  return 0;
}
