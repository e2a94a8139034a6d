#include "replication/anti_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace porcupine::replication {
namespace {

Item Msg(const std::string& user, char id, uint64_t hlc) {
  return {{ObjectRef::Kind::kMessage, user, 1, std::string(16, id)}, hlc};
}

uint64_t Digest(const std::vector<Item>& items) {
  uint64_t d = 0;
  for (const Item& i : items) d ^= ItemHash(i);
  return d;
}

TEST(AntiEntropy, DigestIgnoresOrderAndSeesEveryDifference) {
  std::vector<Item> a = {Msg("u", 'a', 1), Msg("u", 'b', 2), Msg("v", 'a', 1)};
  std::vector<Item> b = {a[2], a[0], a[1]};
  EXPECT_EQ(Digest(a), Digest(b));
  std::vector<Item> newer = a;
  newer[1].hlc = 3;  // one version differs
  EXPECT_NE(Digest(a), Digest(newer));
  std::vector<Item> fewer(a.begin(), a.begin() + 2);
  EXPECT_NE(Digest(a), Digest(fewer));
  // The same id for another user, folder or kind is another object.
  Item other_user = Msg("w", 'a', 1);
  Item other_folder = a[0];
  other_folder.object.folder = 2;
  Item profile{{ObjectRef::Kind::kProfile, "u", 1, std::string(16, 'a')}, 1};
  EXPECT_NE(ItemHash(a[0]), ItemHash(other_user));
  EXPECT_NE(ItemHash(a[0]), ItemHash(other_folder));
  EXPECT_NE(ItemHash(a[0]), ItemHash(profile));
  EXPECT_EQ(Digest({}), 0u);
}

TEST(AntiEntropy, DifferingListsTheSlotsThatDiffer) {
  EXPECT_EQ(Differing({1, 2, 3, 4}, {1, 9, 3, 8}), (std::vector<uint32_t>{1, 3}));
  EXPECT_TRUE(Differing({5, 5}, {5, 5}).empty());
  EXPECT_EQ(MessageSlot(7), 7u);
  EXPECT_EQ(ProfileSlot(256, 7), 263u);
}

TEST(AntiEntropy, CompareSendsEachSideWhatTheOtherLacksOrHoldsOlder) {
  const std::vector<Item> mine = {Msg("u", 'a', 5), Msg("u", 'b', 1), Msg("u", 'c', 2)};
  const std::vector<Item> theirs = {Msg("u", 'a', 5), Msg("u", 'b', 4), Msg("u", 'd', 7)};
  Comparison c = Compare(mine, theirs);
  // 'a' is the same; 'b' is newer there; 'c' only here; 'd' only there.
  EXPECT_EQ(c.push, (std::vector<Item>{Msg("u", 'c', 2)}));
  std::sort(c.pull.begin(), c.pull.end(),
            [](const Item& x, const Item& y) { return x.object < y.object; });
  EXPECT_EQ(c.pull, (std::vector<Item>{Msg("u", 'b', 4), Msg("u", 'd', 7)}));
  Comparison same = Compare(mine, mine);
  EXPECT_TRUE(same.push.empty());
  EXPECT_TRUE(same.pull.empty());
  // A tombstone here (newer version) goes to a side that still holds it live.
  Comparison tomb = Compare({Msg("u", 'x', 9)}, {Msg("u", 'x', 3)});
  EXPECT_EQ(tomb.push, (std::vector<Item>{Msg("u", 'x', 9)}));
  EXPECT_TRUE(tomb.pull.empty());
}

}  // namespace
}  // namespace porcupine::replication
