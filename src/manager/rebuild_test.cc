#include "manager/rebuild.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

namespace porcupine::manager {
namespace {

using cluster::Member;
using cluster::UserMap;
using cluster::View;

constexpr uint32_t kBuckets = 8;

// Members 1..n; bucket b is managed by node b % n + 1, stamped `epoch`.
View MakeView(Epoch epoch, NodeId n, Epoch base_epoch = 0, std::vector<NodeId> joined = {}) {
  View v;
  v.epoch = epoch;
  for (NodeId id = 1; id <= n; ++id) v.members.push_back({id, 1, "n" + std::to_string(id), ""});
  v.user_map = UserMap(kBuckets, 1, epoch);
  for (uint32_t b = 0; b < kBuckets; ++b) v.user_map.Set(b, b % n + 1, epoch);
  v.base_epoch = base_epoch;
  v.joined = std::move(joined);
  return v;
}

std::vector<uint32_t> All() {
  std::vector<uint32_t> out;
  for (uint32_t b = 0; b < kBuckets; ++b) out.push_back(b);
  return out;
}

TEST(BucketsToAnnounce, AllOrOnlyTheChangedEntries) {
  const View prev = MakeView(10, 2);
  View next = prev;  // same members; entries 2 and 5 change by hand
  next.epoch = 20;
  next.base_epoch = 10;
  next.user_map.Set(2, 2, 20);  // new manager
  next.user_map.Set(5, 2, 20);  // same manager, restamped
  View prev_other_buckets = prev;
  prev_other_buckets.user_map = UserMap(kBuckets * 2, 1, 10);
  View next_joined = next;
  next_joined.joined = {1};
  View next_other_joined = next;
  next_other_joined.joined = {2};
  View next_skipped = next;
  next_skipped.base_epoch = 15;  // computed from a view this node never installed
  View next_same = prev;
  next_same.epoch = 20;
  next_same.base_epoch = 10;
  struct Case {
    const char* name;
    View prev, next;
    std::vector<uint32_t> want;
  };
  const Case cases[] = {
      {"never announced", View{}, next, All()},
      {"never announced, prev with the right bucket count", MakeView(0, 2), next, All()},
      {"changed entries only", prev, next, {2, 5}},
      {"another node joined", prev, next_other_joined, {2, 5}},
      {"this node joined", prev, next_joined, All()},
      {"views were missed", prev, next_skipped, All()},
      {"bucket count changed", prev_other_buckets, next, All()},
      {"nothing changed", prev, next_same, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(BucketsToAnnounce(c.prev, c.next, 1), c.want);
  }
}

BucketAnnouncement Bucket(uint32_t bucket, size_t users) {
  BucketAnnouncement ba;
  ba.bucket = bucket;
  ba.entry_epoch = 20;
  ba.stamp = 7;
  for (size_t i = 0; i < users; ++i) {
    ba.users.push_back({"u" + std::to_string(bucket) + "-" + std::to_string(i), true, {}});
  }
  return ba;
}

// The bucket numbers of each chunk.
std::vector<std::vector<uint32_t>> Layout(const std::vector<RebuildChunk>& chunks) {
  std::vector<std::vector<uint32_t>> out;
  for (const RebuildChunk& c : chunks) {
    out.emplace_back();
    for (const BucketAnnouncement& ba : c.buckets) out.back().push_back(ba.bucket);
  }
  return out;
}

TEST(MakeChunks, EveryMemberGetsASetEvenAnEmptyOne) {
  const View next = MakeView(20, 3);
  auto sets = MakeChunks(next, {}, 10);
  ASSERT_EQ(sets.size(), 3u);
  for (NodeId id : {1u, 2u, 3u}) {
    SCOPED_TRACE(id);
    ASSERT_EQ(sets[id].size(), 1u);
    EXPECT_EQ(sets[id][0].view_epoch, 20u);
    EXPECT_EQ(sets[id][0].seq, 0u);
    EXPECT_EQ(sets[id][0].total, 1u);
    EXPECT_TRUE(sets[id][0].buckets.empty());
  }
}

TEST(MakeChunks, BucketsGoToTheirManager) {
  const View next = MakeView(20, 3);  // 1: 0 3 6, 2: 1 4 7, 3: 2 5
  auto sets = MakeChunks(next, {Bucket(0, 1), Bucket(1, 1), Bucket(3, 1), Bucket(5, 1)}, 10);
  EXPECT_EQ(Layout(sets[1]), (std::vector<std::vector<uint32_t>>{{0, 3}}));
  EXPECT_EQ(Layout(sets[2]), (std::vector<std::vector<uint32_t>>{{1}}));
  EXPECT_EQ(Layout(sets[3]), (std::vector<std::vector<uint32_t>>{{5}}));
  EXPECT_EQ(sets[1][0].buckets[1].users.size(), 1u);
  EXPECT_EQ(sets[1][0].buckets[1].stamp, 7u);
  EXPECT_EQ(sets[1][0].buckets[1].entry_epoch, 20u);
}

TEST(MakeChunks, WholeBucketsPerChunk) {
  const View next = MakeView(20, 1);  // node 1 manages every bucket
  struct Case {
    const char* name;
    std::vector<size_t> users;  // per bucket 0, 1, ...
    size_t max;
    std::vector<std::vector<uint32_t>> want;
  };
  const Case cases[] = {
      {"all fit", {1, 1, 1}, 3, {{0, 1, 2}}},
      {"fourth overflows", {1, 1, 1, 1}, 3, {{0, 1, 2}, {3}}},
      {"exactly full", {2, 1, 2}, 3, {{0, 1}, {2}}},
      {"a large bucket gets a chunk of its own", {2, 5, 1}, 3, {{0}, {1}, {2}}},
      {"a large bucket first", {5, 1, 1}, 3, {{0}, {1, 2}}},
      {"one user per chunk", {1, 1}, 1, {{0}, {1}}},
      {"empty buckets travel too", {0, 2, 0, 1, 0}, 3, {{0, 1, 2, 3, 4}}},
      {"an empty bucket never opens a chunk", {3, 0, 0}, 3, {{0, 1, 2}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<BucketAnnouncement> in;
    for (uint32_t b = 0; b < c.users.size(); ++b) in.push_back(Bucket(b, c.users[b]));
    auto sets = MakeChunks(next, in, c.max);
    ASSERT_EQ(sets.size(), 1u);
    const std::vector<RebuildChunk>& chunks = sets[1];
    EXPECT_EQ(Layout(chunks), c.want);
    for (size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_EQ(chunks[i].seq, i);
      EXPECT_EQ(chunks[i].total, chunks.size());
      EXPECT_EQ(chunks[i].view_epoch, 20u);
    }
  }
}

TEST(MakeChunks, RandomInputsKeepEveryBucketOnceAndRespectTheLimit) {
  std::mt19937_64 rng(17);
  const View next = MakeView(20, 3);
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    const size_t max = rng() % 6 + 1;
    std::vector<BucketAnnouncement> in;
    size_t users = 0;
    for (uint32_t b = 0; b < kBuckets; ++b) {
      if (rng() % 4 == 0) continue;  // not scanned
      in.push_back(Bucket(b, rng() % 8));
      users += in.back().users.size();
    }
    auto sets = MakeChunks(next, in, max);
    size_t seen = 0;
    std::set<uint32_t> buckets_seen;
    for (const auto& [manager, chunks] : sets) {
      ASSERT_FALSE(chunks.empty());
      for (size_t i = 0; i < chunks.size(); ++i) {
        const RebuildChunk& c = chunks[i];
        EXPECT_EQ(c.seq, i);
        EXPECT_EQ(c.total, chunks.size());
        size_t in_chunk = 0, nonempty = 0;
        for (const BucketAnnouncement& ba : c.buckets) {
          EXPECT_EQ(next.user_map.ManagerOf(ba.bucket), manager);
          EXPECT_TRUE(buckets_seen.insert(ba.bucket).second) << "bucket " << ba.bucket << " twice";
          in_chunk += ba.users.size();
          nonempty += !ba.users.empty();
        }
        EXPECT_TRUE(in_chunk <= max || nonempty == 1) << in_chunk << " users";
        if (chunks.size() > 1) {
          EXPECT_FALSE(c.buckets.empty()) << "no empty chunk in a set";
        }
        seen += in_chunk;
      }
    }
    EXPECT_EQ(seen, users);
    EXPECT_EQ(buckets_seen.size(), in.size()) << "every scanned bucket is announced";
  }
}

TEST(AnnouncementBuilder, OneAnnouncementPerListedBucketEmptyOnesToo) {
  View view = MakeView(20, 2);
  view.user_map.Set(3, 2, 15);                               // an older entry
  AnnouncementBuilder builder(view, {3, 1, 3, 6, 99}, 777);  // a duplicate, an out-of-range bucket
  builder.Add(1, "a", true, nullptr);
  std::vector<BucketAnnouncement> got = builder.Take();
  ASSERT_EQ(got.size(), 3u);
  const uint32_t want_bucket[] = {3, 1, 6};
  const uint64_t want_entry[] = {15, 20, 20};
  const size_t want_users[] = {0, 1, 0};
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].bucket, want_bucket[i]);
    EXPECT_EQ(got[i].entry_epoch, want_entry[i]);
    EXPECT_EQ(got[i].stamp, 777u);
    EXPECT_EQ(got[i].users.size(), want_users[i]);
  }
}

TEST(AnnouncementBuilder, ARunOfOneUserBecomesOneAnnouncement) {
  const View view = MakeView(20, 1);
  store::Profile profile;
  profile.set_user("a");
  profile.set_hlc(9);
  AnnouncementBuilder builder(view, {2}, 1);
  builder.Add(2, "a", false, &profile);  // the profile replica
  builder.Add(2, "a", true, nullptr);    // a fragment
  builder.Add(2, "a", false, nullptr);   // another key of the user, no fragment
  builder.Add(2, "b", false, nullptr);   // a key that is neither
  builder.Add(5, "c", true, nullptr);    // a bucket not announced: ignored
  std::vector<BucketAnnouncement> got = builder.Take();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].users.size(), 2u);
  EXPECT_EQ(got[0].users[0].user, "a");
  EXPECT_TRUE(got[0].users[0].has_fragment);
  ASSERT_TRUE(got[0].users[0].profile.has_value());
  EXPECT_EQ(got[0].users[0].profile->hlc(), 9u);
  EXPECT_EQ(got[0].users[1].user, "b");
  EXPECT_FALSE(got[0].users[1].has_fragment);
  EXPECT_FALSE(got[0].users[1].profile.has_value());
}

}  // namespace
}  // namespace porcupine::manager
