// porcupine-sim: runs the deterministic cluster simulation (sim/sim.h).
//
//   porcupine-sim --nodes 10 --seed 7            one run, exit 1 on a violation
//   porcupine-sim --nodes 10 --seeds 200         200 seeds from a random one, prints failures
//   porcupine-sim --nodes 10 --seeds 200 --seed 1  seeds 1..200
//   porcupine-sim --nodes 10 --seed 7 --trace    replay one seed with every fault and view
#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>

#include "sim/sim.h"

int main(int argc, char** argv) {
  porcupine::sim::Options o;
  int seeds = 0;
  std::string policy = "dynamic";
  bool no_partitions = false;
  CLI::App app{"porcupine-sim: deterministic simulation of a porcupine cluster"};
  app.add_option("--nodes", o.nodes, "nodes")->capture_default_str();
  auto* seed_opt = app.add_option("--seed", o.seed,
                                  "seed (the first one with --seeds; default with --seeds: "
                                  "a random one, printed)");
  app.add_option("--seeds", seeds, "run this many consecutive seeds");
  app.add_option("--users", o.users, "users")->capture_default_str();
  app.add_option("--buckets", o.buckets, "user-map buckets")->capture_default_str();
  app.add_option("--chaos-ms", o.chaos_ms, "simulated ms of faults and load")
      ->capture_default_str();
  app.add_option("--quiesce-ms", o.quiesce_ms, "simulated ms to settle")->capture_default_str();
  app.add_option("--faults-per-s", o.faults_per_s, "nemesis actions per second")
      ->capture_default_str();
  app.add_option("--deliveries-per-s", o.deliveries_per_s, "deliveries per second")
      ->capture_default_str();
  app.add_option("--loss", o.loss, "message loss probability")->capture_default_str();
  app.add_option("--max-delay-ms", o.max_delay_ms, "largest network delay")->capture_default_str();
  app.add_option("--upkeep-interval-ms", o.upkeep_interval_ms,
                 "anti-entropy, re-replication and tombstone GC rounds this often")
      ->capture_default_str();
  app.add_option("--grace-ms", o.tombstone_grace_ms, "tombstone GC age")->capture_default_str();
  app.add_option("--replication", o.replication, "copies of every message")->capture_default_str();
  app.add_option("--policy", policy, "dynamic | static | random")->capture_default_str();
  app.add_flag("--no-partitions", no_partitions, "crash and pause only");
  bool no_widen = false;
  app.add_flag("--no-widen", no_widen,
               "turn off the replica-list widening (to see the checker catch what it prevents)");
  app.add_flag("--trace", o.trace, "print faults and view changes");
  app.add_option("--watch", o.watch_user,
                 "print every event about this user (e.g. u7@example.test)");
  CLI11_PARSE(app, argc, argv);
  // The command that replays one seed: every option but the seed choice.
  std::string replay = "porcupine-sim";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" || a == "--seeds") {
      ++i;
      continue;
    }
    if (a.rfind("--seed=", 0) == 0 || a.rfind("--seeds=", 0) == 0) continue;
    replay += " " + a;
  }
  auto p = porcupine::cluster::ParsePolicy(policy);
  if (!p) {
    std::fprintf(stderr, "porcupine-sim: unknown policy %s\n", policy.c_str());
    return 2;
  }
  o.policy = *p;
  o.partitions = !no_partitions;
  o.widen_replicas = !no_widen;
  if (seeds > 0 && seed_opt->count() == 0) {
    o.seed = std::random_device{}() % 1000000000 + 1;
    std::printf("seeds %llu..%llu\n", (unsigned long long)o.seed,
                (unsigned long long)(o.seed + static_cast<uint64_t>(seeds) - 1));
  }
  const uint64_t first = o.seed;
  const uint64_t count = seeds > 0 ? static_cast<uint64_t>(seeds) : 1;
  int failed = 0;
  for (uint64_t s = first; s < first + count; ++s) {
    o.seed = s;
    porcupine::sim::Result r = porcupine::sim::Run(o);
    if (r.ok()) {
      if (count == 1 || o.trace)
        std::printf("seed %llu ok: %s\n", (unsigned long long)s, r.Summary().c_str());
      continue;
    }
    ++failed;
    std::printf("seed %llu FAILED: %s\n", (unsigned long long)s, r.Summary().c_str());
    for (const std::string& v : r.violations) std::printf("  %s\n", v.c_str());
    std::printf("  replay: %s --seed %llu --trace\n", replay.c_str(), (unsigned long long)s);
  }
  if (count > 1) std::printf("%d of %llu seeds failed\n", failed, (unsigned long long)count);
  return failed ? 1 : 0;
}
