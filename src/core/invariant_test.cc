#include "core/invariant.h"

#include <gtest/gtest.h>

namespace porcupine {
namespace {

int Checked(int x) {
  PORCUPINE_INVARIANT(x > 0, "x is positive");
  return x > 0 ? x : 0;  // the path a failed check takes
}

TEST(Invariant, AHoldingInvariantCostsNothingAndCountsNothing) {
  const uint64_t before = InvariantViolations();
  EXPECT_EQ(Checked(3), 3);
  EXPECT_EQ(InvariantViolations(), before);
}

#ifdef NDEBUG
TEST(Invariant, ReleaseBuildsCountAndGoOn) {
  const uint64_t before = InvariantViolations();
  EXPECT_EQ(Checked(-1), 0);
  EXPECT_EQ(Checked(-2), 0);
  EXPECT_EQ(InvariantViolations(), before + 2);
}
#else
TEST(InvariantDeathTest, DebugBuildsStopAtTheSpot) {
  EXPECT_DEATH(Checked(-1), "invariant failed: x is positive");
}
#endif

}  // namespace
}  // namespace porcupine
