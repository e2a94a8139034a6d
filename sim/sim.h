// Deterministic simulation of a porcupine cluster (DESIGN.md §9).
//
// One process, many nodes, simulated time. Each node runs the production
// state machines — cluster::Membership, manager::SoftState, the rebuild
// announcer (manager/rebuild.h), cluster::LoadTable and the balancer — and a
// small model of the daemon's delivery path on a simulated disk that
// survives crashes. The network delays, drops, partitions and crashes
// messages; a nemesis injects faults; a workload delivers and deletes mail
// and creates users. Every run is a pure function of its Options (seed
// included): a failing seed replays exactly.
//
// Invariants are checked after every view installation and at the end
// (after faults stop and the cluster quiesces); violations are collected in
// Result::violations with the simulated time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/balancer.h"
#include "cluster/load_table.h"
#include "cluster/membership.h"
#include "manager/rebuild.h"
#include "manager/soft_state.h"

namespace porcupine::sim {

using cluster::Epoch;
using cluster::NodeId;

struct Options {
  uint64_t seed = 1;
  int nodes = 5;
  int users = 200;
  uint32_t buckets = 256;
  int spread = 2;
  int replication = 2;  // copies of every message
  int ack_copies = 2;   // copies before a delivery is acknowledged (fewer reachable: still)
  cluster::Policy policy = cluster::Policy::kDynamic;
  cluster::MembershipOptions membership;  // buckets is overwritten with `buckets`

  int64_t chaos_ms = 20000;    // faults and workload run this long
  int64_t quiesce_ms = 20000;  // then everything heals and settles this long
  double deliveries_per_s = 200;
  double deletes_per_s = 50;
  double creates_per_s = 2;
  double faults_per_s = 0.3;  // nemesis actions
  int max_down = -1;          // crashed at once at most; -1: (nodes - 1) / 2
  bool partitions = true;
  double loss = 0.01;  // per-message drop probability during chaos
  int64_t min_delay_ms = 1;
  int64_t max_delay_ms = 8;
  int64_t disk_ms = 1;             // service time of one disk operation
  int64_t rebuild_wait_ms = 1000;  // manager: bounded wait for a bucket being rebuilt
  int64_t delivery_deadline_ms = 5000;
  int64_t retry_ms = 200;  // reliable messages are re-sent this often
  size_t max_users_per_chunk = 64;
  // Upkeep (replication/maintenance.h, run as the daemon runs it):
  // anti-entropy, re-replication and tombstone GC rounds. The grace must
  // exceed the longest time a node is away (docs/replication.md): crashes,
  // pauses and partitions here last at most 8 + 6 + 10 s.
  bool upkeep = true;
  int64_t upkeep_interval_ms = 4000;
  int64_t upkeep_after_join_ms = 500;
  int64_t tombstone_grace_ms = 30000;
  // Off only to show the checker catches what it prevents (sim_test.cc).
  bool widen_replicas = true;
  bool trace = false;      // print every fault and view change
  std::string watch_user;  // print every event about this user
};

struct Result {
  std::vector<std::string> violations;
  uint64_t events = 0;
  uint64_t messages = 0;
  uint64_t views_installed = 0;
  uint64_t deliveries_acked = 0;
  uint64_t deliveries_failed = 0;
  uint64_t deletes = 0;
  uint64_t users_created = 0;
  uint64_t rebuild_chunks = 0;
  uint64_t replica_pushes = 0;
  uint64_t upkeep_rounds = 0;
  uint64_t slots_repaired = 0;  // anti-entropy slots that differed
  uint64_t repair_pushes = 0;   // objects anti-entropy had pushed
  uint64_t rereplicated = 0;
  uint64_t purged = 0;  // tombstones collected
  bool ok() const { return violations.empty(); }
  std::string Summary() const;
};

// Runs one simulation.
Result Run(const Options& options);

}  // namespace porcupine::sim
