#include "manager/fragment_presence.h"

#include <gtest/gtest.h>

namespace porcupine::manager {
namespace {

TEST(FragmentPresenceTest, TheManagerIsToldWhenItMayNotListThisNode) {
  struct Case {
    bool emptied, listed, raced, tell;
  };
  for (const Case& c : std::vector<Case>{{false, true, false, false},
                                         {false, false, false, true},
                                         {false, true, true, true},
                                         {true, true, false, true},
                                         {true, false, true, true}}) {
    FragmentPresence p;
    if (c.emptied) p.Emptied("u");
    EXPECT_EQ(p.LiveWritten("u", c.listed, c.raced), c.tell) << c.emptied << c.listed << c.raced;
  }
}

TEST(FragmentPresenceTest, AnEmptiedFragmentTellsOnceThenTrustsTheMap) {
  FragmentPresence p;
  p.Emptied("a");
  EXPECT_FALSE(p.LiveWritten("b", true, false)) << "per user";
  EXPECT_TRUE(p.LiveWritten("a", true, false));
  EXPECT_FALSE(p.LiveWritten("a", true, false));
  p.Emptied("a");  // telling failed: the next write tells again
  EXPECT_TRUE(p.LiveWritten("a", true, false));
}

}  // namespace
}  // namespace porcupine::manager
