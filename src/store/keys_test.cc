#include "store/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "store/message_id.h"

namespace porcupine::store {
namespace {

TEST(MessageId, BytesRoundTripAndBigEndian) {
  const MessageId id{0x0102030405060708ull, 0x090a0b0c, 0x0d0e0f10};
  const std::string b = id.ToBytes();
  ASSERT_EQ(b.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(static_cast<uint8_t>(b[i]), i + 1);
  EXPECT_EQ(MessageId::FromBytes(b), id);
  EXPECT_EQ(MessageId::FromBytes(b.substr(1)), std::nullopt);
  EXPECT_EQ(MessageId::FromBytes(b + "x"), std::nullopt);
  EXPECT_EQ(MessageId::FromBytes(""), std::nullopt);
}

TEST(MessageId, HexRoundTripAndStrictness) {
  const MessageId id{0xfedcba9876543210ull, 0xdeadbeef, 42};
  const std::string hex = id.ToHex();
  EXPECT_EQ(hex, "fedcba9876543210deadbeef0000002a");
  EXPECT_EQ(MessageId::FromHex(hex), id);
  EXPECT_EQ(MessageId::FromHex("FEDCBA9876543210DEADBEEF0000002A"), id);
  EXPECT_EQ(MessageId::FromHex(hex.substr(1)), std::nullopt);
  EXPECT_EQ(MessageId::FromHex(hex + "0"), std::nullopt);
  EXPECT_EQ(MessageId::FromHex("fedcba9876543210deadbeef0000002g"), std::nullopt);
  EXPECT_EQ(MessageId::FromHex(" edcba9876543210deadbeef0000002a"), std::nullopt);
  EXPECT_EQ(MessageId::FromHex("0xdcba9876543210deadbeef0000002a"), std::nullopt);
  EXPECT_EQ(MessageId::FromHex(""), std::nullopt);
}

TEST(MessageId, ByteOrderIsNumericOrder) {
  std::vector<MessageId> ids = {{1, 0, 0},         {0, 5, 0}, {0, 0, 9},
                                {0x100, 0, 0},     {1, 0, 1}, {0xffffffffffffffffull, 0, 0},
                                {0, 0xffffffff, 0}};
  std::sort(ids.begin(), ids.end());
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1].ToBytes(), ids[i].ToBytes());
}

TEST(Keys, MessageKeyLayout) {
  const MessageId id{1, 2, 3};
  const std::string k = keys::MessageKey(0x0102, "bob", 0x0a0b0c0d, id);
  const std::string expect =
      std::string("\x01\x02\x03") + "bob" + std::string("\x0a\x0b\x0c\x0d") + id.ToBytes();
  EXPECT_EQ(k, expect);
  EXPECT_EQ(keys::UserPrefix(0x0102, "bob"), std::string("\x01\x02\x03") + "bob");
  EXPECT_TRUE(k.starts_with(keys::FolderPrefix(0x0102, "bob", 0x0a0b0c0d)));
  EXPECT_TRUE(k.starts_with(keys::UserPrefix(0x0102, "bob")));
  EXPECT_EQ(keys::BodyKey(id), id.ToBytes());

  std::optional<keys::MessageKeyParts> p = keys::ParseMessageKey(k);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bucket, 0x0102);
  EXPECT_EQ(p->user, "bob");
  EXPECT_EQ(p->folder, 0x0a0b0c0du);
  EXPECT_EQ(p->id, id);
  EXPECT_FALSE(keys::ParseMessageKey(k.substr(0, k.size() - 1)));
  EXPECT_FALSE(keys::ParseMessageKey(k + "x"));
}

TEST(Keys, ParseUserKeyRejectsTruncation) {
  EXPECT_FALSE(keys::ParseUserKey(""));
  EXPECT_FALSE(keys::ParseUserKey(std::string("\x00\x01", 2)));
  EXPECT_FALSE(
      keys::ParseUserKey(std::string("\x00\x01\x05"
                                     "abc",
                                     6)));
  EXPECT_FALSE(keys::ParseUserKey(std::string("\x00\x01\x00", 3)));  // empty user
  const std::string key(
      "\x00\x01\x03"
      "abcrest",
      10);
  std::optional<keys::UserKey> k = keys::ParseUserKey(key);  // views into `key`
  ASSERT_TRUE(k);
  EXPECT_EQ(k->bucket, 1);
  EXPECT_EQ(k->user, "abc");
  EXPECT_EQ(k->rest, "rest");
}

TEST(Keys, UserLengthLimits) {
  EXPECT_FALSE(keys::CheckUser("").ok());
  EXPECT_TRUE(keys::CheckUser("a").ok());
  EXPECT_TRUE(keys::CheckUser(std::string(255, 'x')).ok());
  EXPECT_EQ(keys::CheckUser(std::string(256, 'x')).code(), Code::kInvalidArgument);
  const std::string user(255, '\xff');
  const std::string key = keys::UserPrefix(3, user);
  EXPECT_EQ(keys::ParseUserKey(key)->user, user);
}

// Buckets sort first (big-endian), then user length, then user bytes, then
// folder, then message id.
TEST(Keys, Ordering) {
  std::vector<std::string> in_order = {
      keys::MessageKey(0, "zz", 9, {9, 9, 9}),     keys::MessageKey(1, "b", 1, {0, 0, 0}),
      keys::MessageKey(1, "b", 1, {0, 0, 1}),      keys::MessageKey(1, "b", 1, {1, 0, 0}),
      keys::MessageKey(1, "b", 2, {0, 0, 0}),      keys::MessageKey(1, "c", 0, {0, 0, 0}),
      keys::MessageKey(1, "aa", 0, {0, 0, 0}),     keys::MessageKey(0x0100, "a", 0, {0, 0, 0}),
      keys::MessageKey(0xffff, "a", 0, {0, 0, 0}),
  };
  for (size_t i = 1; i < in_order.size(); ++i) {
    EXPECT_LT(in_order[i - 1], in_order[i]) << i;  // std::string compares bytes unsigned
  }
  // A user's keys never interleave with a user whose name extends it.
  EXPECT_FALSE(keys::MessageKey(1, "bob2", 1, {}).starts_with(keys::UserPrefix(1, "bob")));
}

TEST(Keys, PrefixSuccessor) {
  EXPECT_EQ(keys::PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(keys::PrefixSuccessor(std::string("a\xff\xff")), "b");
  EXPECT_EQ(keys::PrefixSuccessor(std::string("\xff\xff")), std::nullopt);
  EXPECT_EQ(keys::PrefixSuccessor(""), std::nullopt);
  const std::string p = keys::UserPrefix(5, "bob");
  const std::string succ = *keys::PrefixSuccessor(p);
  EXPECT_LT(keys::MessageKey(5, "bob", 0xffffffff, {~0ull, ~0u, ~0u}), succ);
  EXPECT_GE(keys::UserPrefix(5, "boc"), succ);
}

}  // namespace
}  // namespace porcupine::store
