// SMTP session ids, from which the session makes its queue ids
// ("<session id>.<n>", n counting the session's DATA transactions): they are
// in every 250 reply after DATA and in every Received: header, so they must
// name one transaction in the whole cluster and over its whole life.
//
// A session id is the hybrid-logical-clock timestamp of the session's start
// and the node id, as 24 lower-case hex digits "<hlc:016x><node:08x>". Node
// ids are unique in a cluster (DESIGN.md §5); a node's HLC never repeats a
// value while it runs and starts above its previous run's values unless the
// wall clock went back across the restart (the same assumption as message
// ids, store/message_id.h). Ids sort by time, like message ids.
#pragma once

#include <cstdint>
#include <string>

#include "core/hlc.h"

namespace porcupine::smtp {

// Digits in a session id.
inline constexpr size_t kSessionIdDigits = 24;

// "<hlc:016x><node:08x>". Pure.
std::string FormatSessionId(uint64_t hlc, uint32_t node);

// Hands out the session ids of one node. Thread-safe (Hlc is).
class SessionIds {
 public:
  // `hlc` must outlive this object.
  SessionIds(uint32_t node, Hlc& hlc) : node_(node), hlc_(hlc) {}
  // A session id no other call on any node of the cluster returns.
  std::string Next() { return FormatSessionId(hlc_.Now(), node_); }

 private:
  const uint32_t node_;
  Hlc& hlc_;
};

}  // namespace porcupine::smtp
