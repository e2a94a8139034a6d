// Simulation scenarios with fixed seeds (porcupine-sim runs random ones).
#include "sim/sim.h"

#include <gtest/gtest.h>

namespace porcupine::sim {
namespace {

void ExpectClean(const Options& o) {
  Result r = sim::Run(o);
  std::string all;
  for (const std::string& v : r.violations) all += "\n  " + v;
  EXPECT_TRUE(r.ok()) << "seed " << o.seed << " nodes " << o.nodes << ": " << r.Summary() << all
                      << "\n  replay: porcupine-sim --nodes " << o.nodes << " --seed " << o.seed
                      << " --trace";
  EXPECT_GT(r.deliveries_acked, 0u);
}

TEST(Sim, ThreeNodes) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Options o;
    o.nodes = 3;
    o.seed = seed;
    ExpectClean(o);
  }
}

TEST(Sim, TenNodes) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Options o;
    o.nodes = 10;
    o.seed = seed;
    ExpectClean(o);
  }
}

TEST(Sim, FiftyNodes) {
  Options o;
  o.nodes = 50;
  o.seed = 1;
  o.chaos_ms = 15000;
  o.deliveries_per_s = 300;
  ExpectClean(o);
}

TEST(Sim, TwoHundredNodes) {
  Options o;
  o.nodes = 200;
  o.seed = 1;
  o.users = 300;
  o.chaos_ms = 8000;
  o.quiesce_ms = 12000;
  o.faults_per_s = 0.5;
  ExpectClean(o);
}

TEST(Sim, SameSeedSameRun) {
  Options o;
  o.nodes = 5;
  o.seed = 42;
  o.chaos_ms = 8000;
  Result a = sim::Run(o), b = sim::Run(o);
  EXPECT_EQ(a.Summary(), b.Summary());
  EXPECT_EQ(a.events, b.events);
}

}  // namespace
}  // namespace porcupine::sim
