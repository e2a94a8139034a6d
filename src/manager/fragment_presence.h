// When a node holding a user's mail (a fragment) must tell the user's
// manager that it holds some (DESIGN.md §5, "mail map"): the one rule the
// daemon (mail/fragments.h) and the simulation (sim/) both follow.
//
// A live message that becomes durable here is acknowledged only after the
// manager lists this node, which it must be told when
// - the sender's mail map did not list this node (`listed` false: a new
//   fragment, or a replica push with no map, as after a restart);
// - a view change raced the write (`raced`: the reconstruction that rebuilt
//   the manager's map may have scanned before the write landed); or
// - this node's fragment emptied since it last told the manager (its last
//   live message was deleted, so the manager was asked to drop it, or telling
//   it failed).
// Otherwise the manager already lists this node and stays right: a node is
// dropped from a map only when emptied (remembered here) or by a
// reconstruction that sees its store.
//
// The emptied set is memory only: after a restart, reconstruction tells
// every manager what this node holds. Thread-compatible.
#pragma once

#include <string>
#include <unordered_set>

namespace porcupine::manager {

class FragmentPresence {
 public:
  // A live message of `user` became durable here. True when the manager must
  // be told before the write is acknowledged; the caller calls Emptied(user)
  // again if telling it fails.
  bool LiveWritten(const std::string& user, bool listed, bool raced) {
    const bool emptied = emptied_.erase(user) > 0;
    return emptied || !listed || raced;
  }
  // This node holds no live message of `user` any more (the manager is asked
  // to drop it, best effort), or telling the manager of a write failed.
  void Emptied(const std::string& user) { emptied_.insert(user); }

 private:
  std::unordered_set<std::string> emptied_;
};

}  // namespace porcupine::manager
