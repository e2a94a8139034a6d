#include "protocol/common/command_gate.h"

#include <gtest/gtest.h>

namespace porcupine::protocol {
namespace {

TEST(CommandGate, HandsOutLinesAndHoldsThemAcrossAPause) {
  LineReader reader(16);
  CommandGate gate;
  HeldLine line;
  EXPECT_EQ(gate.Pull(reader, false, &line), CommandGate::Kind::kNeedInput);
  reader.Feed("NOOP\r\nbare\nthis line is far too long\r\nLAST\r\n");
  ASSERT_EQ(gate.Pull(reader, false, &line), CommandGate::Kind::kLine);
  EXPECT_EQ(line.text, "NOOP");
  // Tarpit: the line is read, held, and only handed out on the next call,
  // even if the tarpit condition has changed meanwhile.
  ASSERT_EQ(gate.Pull(reader, true, &line), CommandGate::Kind::kPause);
  ASSERT_EQ(gate.Pull(reader, true, &line), CommandGate::Kind::kLine);
  EXPECT_EQ(line.text, "bare");
  EXPECT_TRUE(line.bare_lf);
  ASSERT_EQ(gate.Pull(reader, false, &line), CommandGate::Kind::kLine);
  EXPECT_TRUE(line.too_long);
  EXPECT_TRUE(line.text.empty());
  ASSERT_EQ(gate.Pull(reader, false, &line), CommandGate::Kind::kLine);
  EXPECT_EQ(line.text, "LAST");
  EXPECT_FALSE(line.bare_lf);
  EXPECT_EQ(gate.Pull(reader, true, &line), CommandGate::Kind::kNeedInput);
}

}  // namespace
}  // namespace porcupine::protocol
