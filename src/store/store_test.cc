#include "store/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "store/keys.h"
#include "store/test_util.h"

namespace porcupine::store {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::TestMessage;
using testing::TestNodeMeta;
using testing::TestProfile;

// A body for records whose body the test does not look at: a live record is
// never created without one.
const std::string kBody = "Subject: t\r\n\r\nt";

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  Options MakeOptions() const {
    Options o;
    o.data_dir = dir_.path() + "/data";
    o.block_cache_bytes = 8 << 20;
    return o;
  }
  void Reopen(const NodeMeta& init = TestNodeMeta()) {
    store_.reset();
    Result<std::unique_ptr<Store>> s = Store::Open(MakeOptions(), init);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  std::vector<MessageId> ListIds(Bucket b, const std::string& user, uint32_t folder = 1,
                                 bool tombstones = false) {
    Result<std::vector<MessageMeta>> list = store_->ListMessages(b, user, folder, tombstones);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    std::vector<MessageId> ids;
    if (list.ok()) {
      for (const MessageMeta& m : *list) ids.push_back(*MessageId::FromBytes(m.id()));
    }
    return ids;
  }
  std::vector<std::pair<Bucket, std::string>> Users(Bucket first, Bucket last) {
    std::vector<std::pair<Bucket, std::string>> out;
    Status s = store_->ScanUsers(first, last,
                                 [&](Bucket b, const std::string& u) { out.emplace_back(b, u); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// Opens the store's RocksDB directly (every family, default options) to
// plant records the Store API refuses to write.
void RawPut(const std::string& data_dir, const std::string& family, const std::string& key,
            const std::string& value) {
  const std::string path = data_dir + "/db";
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &db).ok());
  const size_t i = std::find(names.begin(), names.end(), family) - names.begin();
  ASSERT_LT(i, names.size());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  EXPECT_TRUE(db->Put(wo, handles[i], key, value).ok());
  for (auto* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  EXPECT_TRUE(db->Close().ok());
  delete db;
}

TEST_F(StoreTest, PutListGetReadBody) {
  const MessageId a{30, 7, 1}, b{10, 7, 2}, c{20, 7, 3}, d{5, 7, 4};
  const std::string body_a = "Subject: a\r\n\r\nA", body_b = "Subject: b\r\n\r\nB";
  Batch batch;
  batch.PutMessage(3, "alice", TestMessage(a), &body_a);
  batch.PutMessage(3, "alice", TestMessage(b), &body_b);
  batch.PutMessage(3, "alice", TestMessage(c), &kBody);
  batch.PutMessage(3, "alice", TestMessage(d, /*folder=*/2), &kBody);
  batch.PutMessage(3, "alicia", TestMessage({1, 7, 9}), &kBody);
  EXPECT_FALSE(batch.empty());
  EXPECT_GT(batch.ByteSize(), body_a.size() + body_b.size());
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());

  EXPECT_EQ(ListIds(3, "alice"), (std::vector<MessageId>{b, c, a}));  // by message id
  EXPECT_EQ(ListIds(3, "alice", 2), (std::vector<MessageId>{d}));
  EXPECT_EQ(ListIds(3, "alicia").size(), 1u);
  EXPECT_TRUE(ListIds(4, "alice").empty());
  EXPECT_TRUE(ListIds(3, "alic").empty());
  Result<std::optional<MessageMeta>> got = store_->GetMessage(3, "alice", 1, a);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->SerializeAsString(), TestMessage(a).SerializeAsString());
  EXPECT_FALSE(store_->GetMessage(3, "alice", 2, a)->has_value());
  EXPECT_EQ(*store_->ReadBody(a), body_a);
  EXPECT_EQ(*store_->ReadBody(b), body_b);
  EXPECT_EQ(*store_->ReadBody(c), kBody);
  EXPECT_EQ(store_->ReadBody({99, 7, 9}).status().code(), Code::kNotFound);
}

TEST_F(StoreTest, DeleteHidesAndDropsBodyThenPurgeRemoves) {
  const MessageId a{1, 7, 1}, b{2, 7, 2};
  const std::string body = "body";
  Batch put;
  put.PutMessage(9, "bob", TestMessage(a), &body);
  put.PutMessage(9, "bob", TestMessage(b), &body);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());

  MessageMeta tomb = TestMessage(a);  // tombstone bit set by DeleteMessage
  tomb.set_hlc(100);
  Batch del;
  del.DeleteMessage(9, "bob", tomb);
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());
  EXPECT_EQ(ListIds(9, "bob"), (std::vector<MessageId>{b}));
  EXPECT_EQ(ListIds(9, "bob", 1, /*tombstones=*/true), (std::vector<MessageId>{a, b}));
  Result<std::optional<MessageMeta>> got = store_->GetMessage(9, "bob", 1, a);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_TRUE((*got)->tombstone());
  EXPECT_EQ((*got)->hlc(), 100u);
  EXPECT_EQ(store_->ReadBody(a).status().code(), Code::kNotFound);
  EXPECT_EQ(*store_->ReadBody(b), body);

  Batch purge;
  purge.PurgeMessage(9, "bob", 1, a);
  ASSERT_TRUE(store_->Commit(std::move(purge)).ok());
  EXPECT_EQ(ListIds(9, "bob", 1, true), (std::vector<MessageId>{b}));
  EXPECT_FALSE(store_->GetMessage(9, "bob", 1, a)->has_value());
}

// ---- the store's rules for message writes (Batch: every write decided at commit) ----

MessageMeta Restamped(MessageMeta m, uint64_t hlc) {
  m.set_hlc(hlc);
  return m;
}

TEST_F(StoreTest, AVersionIsReplacedOnlyByALaterOne) {
  const MessageId a{10, 7, 1};
  Batch put;
  put.PutMessage(3, "ann", Restamped(TestMessage(a), 10), &kBody);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());
  MessageOutcome older, same, newer;
  Batch b;
  b.PutMessage(3, "ann", Restamped(TestMessage(a), 5), &kBody, &older);
  b.PutMessage(3, "ann", Restamped(TestMessage(a), 10), &kBody, &same);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_TRUE(older.refused && !older.applied);
  EXPECT_TRUE(same.refused && !same.applied);
  EXPECT_EQ(older.after->hlc(), 10u) << "the outcome shows the record held";
  Batch c;
  c.PutMessage(3, "ann", Restamped(TestMessage(a), 11), &kBody, &newer);
  ASSERT_TRUE(store_->Commit(std::move(c)).ok());
  EXPECT_TRUE(newer.applied);
  EXPECT_EQ(store_->GetMessage(3, "ann", 1, a)->value().hlc(), 11u);
  EXPECT_EQ(store_->stats().message_writes_refused, 2u);
}

// The ghost of issue #13: re-replication scanned a live message, a delete
// landed (tombstone, body dropped), then the scanned version came back
// re-stamped as newer and without its body: listed, unreadable, and pushed
// to new replicas as a deleted message come back.
TEST_F(StoreTest, ATombstoneIsNeverReplacedByALiveVersionEvenARestampedOne) {
  const MessageId a{10, 7, 1};
  Batch put;
  put.PutMessage(3, "ann", Restamped(TestMessage(a), 10), &kBody);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());
  MessageMeta scanned = store_->GetMessage(3, "ann", 1, a)->value();
  Batch del;
  del.DeleteMessage(3, "ann", Restamped(scanned, 11));
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());
  MessageMeta rewritten = Restamped(scanned, 50);  // later than the tombstone's HLC
  rewritten.add_replicas(9);
  MessageOutcome outcome;
  Batch late;
  late.PutMessage(3, "ann", rewritten, nullptr, &outcome);
  ASSERT_TRUE(store_->Commit(std::move(late)).ok());
  EXPECT_TRUE(outcome.refused);
  EXPECT_TRUE(ListIds(3, "ann").empty()) << "nothing listed";
  Result<std::optional<MessageMeta>> held = store_->GetMessage(3, "ann", 1, a);
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_TRUE((*held)->tombstone());
  EXPECT_EQ((*held)->hlc(), 11u);
  // With its body too: a deletion is final.
  Batch again;
  again.PutMessage(3, "ann", rewritten, &kBody);
  ASSERT_TRUE(store_->Commit(std::move(again)).ok());
  EXPECT_TRUE(ListIds(3, "ann").empty());
  EXPECT_EQ(store_->ReadBody(a).status().code(), Code::kNotFound);
  EXPECT_GT(VersionOf(**held), VersionOf(rewritten));
}

TEST_F(StoreTest, ALiveRecordIsNeverCreatedWithoutItsBody) {
  const MessageId a{10, 7, 1};
  MessageOutcome outcome;
  Batch b;
  b.PutMessage(3, "ann", TestMessage(a), nullptr, &outcome);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_TRUE(outcome.refused);
  EXPECT_FALSE(outcome.after.has_value());
  EXPECT_FALSE(store_->GetMessage(3, "ann", 1, a)->has_value());
  // A tombstone for a message never seen is kept (a death certificate).
  Batch del;
  del.DeleteMessage(3, "ann", TestMessage(a));
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());
  EXPECT_TRUE(store_->GetMessage(3, "ann", 1, a)->value().tombstone());
}

TEST_F(StoreTest, UpdateMessageDecidesAgainstTheRecordAsItIsWhenWritten) {
  const MessageId a{10, 7, 1};
  Batch put;
  put.PutMessage(3, "ann", Restamped(TestMessage(a), 10), &kBody);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());
  // Two read-modify-writes in one batch: the second sees the first's result.
  std::vector<uint64_t> seen;
  auto add_flag = [&seen](std::string flag) {
    return [&seen, flag](const MessageMeta* held) {
      seen.push_back(held ? held->hlc() : 0);
      MessageChange c;
      if (!held || held->tombstone()) return c;
      c.action = MessageChange::Action::kPut;
      c.meta = *held;
      c.meta.add_flags(flag);
      c.meta.set_hlc(held->hlc() + 1);
      return c;
    };
  };
  MessageOutcome first, second, after_delete;
  Batch b;
  b.UpdateMessage(3, "ann", 1, a, add_flag("\\Seen"), &first);
  b.UpdateMessage(3, "ann", 1, a, add_flag("\\Flagged"), &second);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{10, 11}));
  EXPECT_TRUE(first.applied && second.applied);
  MessageMeta held = store_->GetMessage(3, "ann", 1, a)->value();
  EXPECT_EQ(held.hlc(), 12u);
  EXPECT_EQ(held.flags_size(), 2);
  // A change decided after a delete sees the tombstone and writes nothing.
  Batch del;
  del.DeleteMessage(3, "ann", Restamped(held, 13));
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());
  Batch late;
  late.UpdateMessage(3, "ann", 1, a, add_flag("\\Answered"), &after_delete);
  ASSERT_TRUE(store_->Commit(std::move(late)).ok());
  EXPECT_FALSE(after_delete.applied);
  EXPECT_TRUE(after_delete.after->tombstone());
  EXPECT_EQ(store_->stats().message_writes_refused, 0u) << "kept, not refused";
}

TEST_F(StoreTest, ALogEntryIsWrittenOnlyWithTheChangeItBelongsTo) {
  const MessageId a{10, 7, 1};
  auto put_with_log = [&](uint64_t hlc, MessageOutcome* out) {
    LogRecord log;
    log.set_kind(1);
    log.set_user("ann");
    log.set_folder(1);
    log.set_id(a.ToBytes());
    log.set_hlc(hlc);
    log.add_remaining(9);
    Batch b;
    b.UpdateMessage(
        3, "ann", 1, a,
        [hlc, log](const MessageMeta*) {
          MessageChange c;
          c.action = MessageChange::Action::kPut;
          c.meta = Restamped(TestMessage({10, 7, 1}), hlc);
          c.body = std::make_shared<const std::string>(kBody);
          c.log = log;
          return c;
        },
        out);
    EXPECT_TRUE(store_->Commit(std::move(b)).ok());
  };
  auto logged = [&] {
    std::vector<uint64_t> hlcs;
    EXPECT_TRUE(store_->ScanLog([&](const LogRecord& r) { hlcs.push_back(r.hlc()); }).ok());
    return hlcs;
  };
  MessageOutcome first, stale;
  put_with_log(20, &first);
  EXPECT_TRUE(first.applied);
  EXPECT_EQ(logged(), std::vector<uint64_t>{20});
  put_with_log(15, &stale);
  EXPECT_TRUE(stale.refused);
  EXPECT_EQ(logged(), std::vector<uint64_t>{20}) << "a refused change leaves the log alone";
}

TEST_F(StoreTest, OnlyATombstoneIsPurged) {
  const MessageId a{10, 7, 1};
  Batch put;
  put.PutMessage(3, "ann", TestMessage(a), &kBody);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());
  Batch purge;
  purge.PurgeMessage(3, "ann", 1, a);
  ASSERT_TRUE(store_->Commit(std::move(purge)).ok());
  EXPECT_EQ(ListIds(3, "ann").size(), 1u);
  EXPECT_EQ(*store_->ReadBody(a), kBody);
  EXPECT_EQ(store_->stats().message_writes_refused, 1u);
}

TEST_F(StoreTest, APushOfALiveVersionRestoresABodyMissingUnderALiveRecord) {
  // Damage from before the store kept its rules: a live record without a body.
  const MessageId a{10, 7, 1};
  const std::string path = MakeOptions().data_dir;
  store_.reset();
  RawPut(path, "msg", keys::MessageKey(3, "ann", 1, a),
         Restamped(TestMessage(a), 10).SerializeAsString());
  Reopen();
  ASSERT_EQ(ListIds(3, "ann").size(), 1u);
  ASSERT_EQ(store_->ReadBody(a).status().code(), Code::kNotFound);
  Batch push;
  push.PutMessage(3, "ann", Restamped(TestMessage(a), 12), &kBody);
  ASSERT_TRUE(store_->Commit(std::move(push)).ok());
  EXPECT_EQ(*store_->ReadBody(a), kBody);
}

TEST_F(StoreTest, MessagesVersionChangesWithEveryVisibleChangeOfTheUser) {
  const uint64_t alice0 = store_->MessagesVersion("alice");
  const uint64_t bob0 = store_->MessagesVersion("bob");
  EXPECT_NE(alice0, 0u);
  EXPECT_EQ(store_->MessagesVersion("alice"), alice0) << "stable while nothing changes";
  const MessageId a{1, 7, 1};
  const std::string body = "body";
  Batch put;
  put.PutMessage(3, "alice", TestMessage(a, /*folder=*/2), &body);
  ASSERT_TRUE(store_->Commit(std::move(put)).ok());
  const uint64_t alice1 = store_->MessagesVersion("alice");
  EXPECT_NE(alice1, alice0) << "any folder counts";
  EXPECT_EQ(store_->MessagesVersion("bob"), bob0) << "another user's stays";
  Batch profile;
  Profile p;
  p.set_user("alice");
  profile.PutProfile(3, p);
  ASSERT_TRUE(store_->Commit(std::move(profile)).ok());
  EXPECT_EQ(store_->MessagesVersion("alice"), alice1) << "a profile is not a message";
  Batch del;
  del.DeleteMessage(3, "alice", TestMessage(a, 2));
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());
  const uint64_t alice2 = store_->MessagesVersion("alice");
  EXPECT_NE(alice2, alice1);
  Batch purge;
  purge.PurgeMessage(3, "alice", 2, a);
  ASSERT_TRUE(store_->Commit(std::move(purge)).ok());
  EXPECT_NE(store_->MessagesVersion("alice"), alice2);
  Batch bad;  // fails whole: nothing visible, no new version
  bad.PutMessage(3, "bob", TestMessage(a), &body);
  bad.PutMessage(3, "", TestMessage(a), &body);
  EXPECT_FALSE(store_->Commit(std::move(bad)).ok());
  EXPECT_EQ(store_->MessagesVersion("bob"), bob0);
  const uint64_t before = store_->MessagesVersion("alice");
  Reopen();
  EXPECT_NE(store_->MessagesVersion("alice"), before) << "a restart never repeats a version";
}

TEST_F(StoreTest, InvalidBatchFailsWholeAndWritesNothing) {
  const std::string body = "x";
  auto commit_fails = [&](Batch batch) {
    EXPECT_FALSE(batch.status().ok());
    Status s = store_->Commit(std::move(batch));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  };
  {
    Batch b;
    b.PutMessage(1, "good", TestMessage({1, 1, 1}), &body);
    b.PutMessage(1, std::string(256, 'u'), TestMessage({2, 1, 1}), &kBody);
    commit_fails(std::move(b));
  }
  {
    Batch b;
    b.PutMessage(1, "", TestMessage({1, 1, 1}), &kBody);
    commit_fails(std::move(b));
  }
  {
    Batch b;
    MessageMeta m = TestMessage({1, 1, 1});
    m.set_id("short");
    b.PutMessage(1, "good", m, &kBody);
    commit_fails(std::move(b));
  }
  {
    Batch b;
    MessageMeta m = TestMessage({1, 1, 1});
    m.set_tombstone(true);
    b.PutMessage(1, "good", m, &kBody);
    commit_fails(std::move(b));
  }
  {
    Batch b;
    MessageMeta m = TestMessage({1, 1, 1});
    m.set_version(2);
    b.PutMessage(1, "good", m, &kBody);
    commit_fails(std::move(b));
  }
  {
    Batch b;
    b.PutProfile(1, TestProfile(std::string(300, 'p')));
    commit_fails(std::move(b));
  }
  EXPECT_TRUE(ListIds(1, "good").empty());
  EXPECT_EQ(store_->ReadBody({1, 1, 1}).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->stats().batches, 0u);
  EXPECT_EQ(store_->stats().failed, 6u);
  // 255 bytes is the limit, and readers check too.
  Batch ok;
  ok.PutMessage(1, std::string(255, 'u'), TestMessage({2, 1, 1}), &kBody);
  EXPECT_TRUE(store_->Commit(std::move(ok)).ok());
  EXPECT_EQ(ListIds(1, std::string(255, 'u')).size(), 1u);
  EXPECT_EQ(store_->ListMessages(1, std::string(256, 'u'), 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(store_->GetProfile(1, "").status().code(), Code::kInvalidArgument);
}

TEST_F(StoreTest, VersionZeroIsStampedAndEmptyBatchCommits) {
  MessageMeta m = TestMessage({1, 1, 1});
  m.set_version(0);
  Profile p = TestProfile("carol");
  p.set_version(0);
  Batch b;
  b.PutMessage(2, "carol", m, &kBody);
  b.PutProfile(2, p);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_EQ(store_->GetMessage(2, "carol", 1, {1, 1, 1})->value().version(), 1u);
  EXPECT_EQ(store_->GetProfile(2, "carol")->value().version(), 1u);
  Batch empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(store_->Commit(std::move(empty)).ok());
}

// Two sides of a partition each changed the profile; the manager writes its
// copy after a replica's copy landed: both changes stay.
TEST_F(StoreTest, MergeProfileMergesWithTheCopyHeldAtCommit) {
  auto with_folder = [](uint32_t id, const std::string& name, uint64_t hlc) {
    Profile p = TestProfile("fay");
    p.set_hlc(hlc);
    Folder* f = p.add_folders();
    f->set_id(id);
    f->set_name(name);
    return p;
  };
  Batch first;
  first.MergeProfile(5, with_folder(1 << 21, "Left", 10));
  ASSERT_TRUE(store_->Commit(std::move(first)).ok());
  Batch second;
  second.MergeProfile(5, with_folder(1 << 22, "Right", 20));
  second.MergeProfile(5, with_folder(1 << 23, "Third", 15));  // merged with the one before
  ASSERT_TRUE(store_->Commit(std::move(second)).ok());
  Profile held = store_->GetProfile(5, "fay")->value();
  std::vector<std::string> names;
  for (const Folder& f : held.folders()) names.push_back(f.name());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"INBOX", "Left", "Right", "Third"}));
  EXPECT_GE(held.hlc(), 20u);
}

TEST_F(StoreTest, Profiles) {
  Batch b;
  b.PutProfile(4, TestProfile("dave"));
  b.PutProfile(4, TestProfile("erin", /*tombstone=*/true));
  b.PutProfile(5, TestProfile("frank"));
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  Result<std::optional<Profile>> dave = store_->GetProfile(4, "dave");
  ASSERT_TRUE(dave.ok() && dave->has_value());
  EXPECT_EQ((*dave)->password_hash(), "$argon2id$test");
  ASSERT_EQ((*dave)->folders_size(), 1);
  EXPECT_EQ((*dave)->folders(0).name(), "INBOX");
  EXPECT_FALSE(store_->GetProfile(5, "dave")->has_value());
  EXPECT_TRUE(store_->GetProfile(4, "erin")->value().tombstone());

  Profile changed = TestProfile("dave");
  changed.set_quota_bytes(1 << 20);
  Batch b2;
  b2.PutProfile(4, changed);
  b2.DeleteProfile(5, "frank");
  ASSERT_TRUE(store_->Commit(std::move(b2)).ok());
  EXPECT_EQ(store_->GetProfile(4, "dave")->value().quota_bytes(), 1u << 20);
  EXPECT_FALSE(store_->GetProfile(5, "frank")->has_value());

  std::vector<std::string> scanned;
  ASSERT_TRUE(store_
                  ->ScanProfiles([&](Bucket bucket, const Profile& p) {
                    EXPECT_EQ(bucket, 4);
                    scanned.push_back(p.user() + (p.tombstone() ? "+" : ""));
                  })
                  .ok());
  EXPECT_EQ(scanned, (std::vector<std::string>{"dave", "erin+"}));
}

TEST_F(StoreTest, ScanUsersMergesMessagesAndProfilesOverBucketRange) {
  Batch b;
  b.PutMessage(0, "m0", TestMessage({1, 1, 1}), &kBody);  // bucket 0: messages only
  b.PutProfile(1, TestProfile("both"));                   // bucket 1: profile and mail
  b.PutMessage(1, "both", TestMessage({1, 1, 2}), &kBody);
  b.PutProfile(1, TestProfile("ghost", true));              // tombstoned profile only
  b.PutMessage(1, "zz", TestMessage({1, 1, 3}), &kBody);    // all messages deleted
  b.PutMessage(2, "late", TestMessage({1, 1, 4}), &kBody);  // tombstone, then a live one
  b.PutMessage(2, "late", TestMessage({1, 1, 5}, 7), &kBody);
  b.PutProfile(2, TestProfile("a"));  // shorter: sorts first
  b.PutMessage(2, "b", TestMessage({1, 1, 6}), &kBody);
  b.PutProfile(2, TestProfile("c"));
  b.PutMessage(0x0100, "big", TestMessage({1, 1, 7}), &kBody);  // bucket order is numeric
  b.PutProfile(0xffff, TestProfile("last"));
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  Batch del;
  del.DeleteMessage(1, "zz", TestMessage({1, 1, 3}));
  del.DeleteMessage(2, "late", TestMessage({1, 1, 4}));
  ASSERT_TRUE(store_->Commit(std::move(del)).ok());

  using U = std::vector<std::pair<Bucket, std::string>>;
  EXPECT_EQ(Users(0, 0xffff), (U{{0, "m0"},
                                 {1, "both"},
                                 {2, "a"},
                                 {2, "b"},
                                 {2, "c"},
                                 {2, "late"},
                                 {0x0100, "big"},
                                 {0xffff, "last"}}));
  EXPECT_EQ(Users(1, 1), (U{{1, "both"}}));
  EXPECT_EQ(Users(1, 2), (U{{1, "both"}, {2, "a"}, {2, "b"}, {2, "c"}, {2, "late"}}));
  EXPECT_EQ(Users(3, 0xff), U{});
  EXPECT_EQ(Users(0xff, 0x100), (U{{0x0100, "big"}}));
  EXPECT_EQ(Users(0xffff, 0xffff), (U{{0xffff, "last"}}));
  EXPECT_EQ(Users(2, 1), U{});
}

TEST_F(StoreTest, ReopenPersistsEverythingAndKeepsFirstNodeMeta) {
  EXPECT_EQ(store_->node_meta().node_id(), 7u);
  EXPECT_EQ(store_->node_meta().format_version(), 1u);
  const std::string body = "persisted body";
  Batch b;
  b.PutMessage(6, "gina", TestMessage({1, 2, 3}), &body);
  b.PutMessage(6, "gina", TestMessage({1, 2, 4}), &body);
  b.PutProfile(6, TestProfile("gina"));
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  Batch d;
  d.DeleteMessage(6, "gina", TestMessage({1, 2, 4}));
  ASSERT_TRUE(store_->Commit(std::move(d)).ok());

  Reopen(TestNodeMeta(99));
  EXPECT_EQ(store_->node_meta().node_id(), 7u);  // the first init wins
  EXPECT_EQ(store_->node_meta().name(), "node-7");
  EXPECT_EQ(store_->node_meta().buckets(), 1024u);
  EXPECT_EQ(ListIds(6, "gina"), (std::vector<MessageId>{{1, 2, 3}}));
  EXPECT_EQ(ListIds(6, "gina", 1, true).size(), 2u);
  EXPECT_EQ(*store_->ReadBody({1, 2, 3}), body);
  EXPECT_EQ(store_->ReadBody({1, 2, 4}).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->GetProfile(6, "gina")->has_value());
  Reopen();  // twice, after recovery flushed the WAL into tables
  EXPECT_EQ(ListIds(6, "gina"), (std::vector<MessageId>{{1, 2, 3}}));
}

TEST_F(StoreTest, RefusesUnknownFormatAndRecordVersions) {
  store_.reset();
  NodeMeta future = TestNodeMeta();
  future.set_format_version(2);
  RawPut(MakeOptions().data_dir, "meta", "node", future.SerializeAsString());
  Result<std::unique_ptr<Store>> s = Store::Open(MakeOptions(), TestNodeMeta());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << s.status().ToString();

  NodeMeta odd = TestNodeMeta();
  odd.set_format_version(1);
  odd.set_version(3);
  RawPut(MakeOptions().data_dir, "meta", "node", odd.SerializeAsString());
  s = Store::Open(MakeOptions(), TestNodeMeta());
  EXPECT_EQ(s.status().code(), Code::kCorruption) << s.status().ToString();

  odd.set_version(1);
  RawPut(MakeOptions().data_dir, "meta", "node", odd.SerializeAsString());
  MessageMeta m = TestMessage({1, 1, 1});
  m.set_version(2);
  RawPut(MakeOptions().data_dir, "msg", keys::MessageKey(1, "hal", 1, {1, 1, 1}),
         m.SerializeAsString());
  Profile p = TestProfile("hal");
  p.set_version(9);
  RawPut(MakeOptions().data_dir, "profile", keys::UserPrefix(1, "hal"), p.SerializeAsString());
  RawPut(MakeOptions().data_dir, "msg", keys::MessageKey(1, "ida", 1, {1, 1, 1}), "\xff garbage");
  RawPut(MakeOptions().data_dir, "msg", keys::MessageKey(1, "joe", 1, {1, 1, 2}),
         TestMessage({1, 1, 1}).SerializeAsString());  // id disagrees with the key
  Reopen();
  EXPECT_EQ(store_->ListMessages(1, "hal", 1).status().code(), Code::kCorruption);
  EXPECT_EQ(store_->GetMessage(1, "hal", 1, {1, 1, 1}).status().code(), Code::kCorruption);
  EXPECT_EQ(store_->GetProfile(1, "hal").status().code(), Code::kCorruption);
  EXPECT_EQ(store_->ListMessages(1, "ida", 1).status().code(), Code::kCorruption);
  EXPECT_EQ(store_->ListMessages(1, "joe", 1).status().code(), Code::kCorruption);
  EXPECT_EQ(store_->ScanUsers(0, 5, [](Bucket, const std::string&) {}).code(), Code::kCorruption);
  EXPECT_EQ(store_->ScanProfiles([](Bucket, const Profile&) {}).code(), Code::kCorruption);
}

TEST_F(StoreTest, ConcurrentSubmitsAreGroupCommitted) {
  constexpr int kThreads = 8, kPerThread = 500;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, failed = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const MessageId id{static_cast<uint64_t>(i), static_cast<uint32_t>(t), 1};
        const std::string body = "body " + id.ToHex();
        Batch b;
        b.PutMessage(static_cast<Bucket>(t), "user" + std::to_string(t), TestMessage(id), &body);
        store_->Submit(std::move(b), [&](Status s) {
          std::lock_guard lock(mu);
          ++done;
          if (!s.ok()) ++failed;
          cv.notify_all();
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 120s, [&] { return done == kThreads * kPerThread; }));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(store_->pending(), 0u);
  const Store::Stats st = store_->stats();
  EXPECT_EQ(st.batches, uint64_t{kThreads * kPerThread});
  EXPECT_LT(st.syncs, st.batches);
  EXPECT_EQ(st.syncs, st.groups);
  EXPECT_GT(st.bytes, 0u);
  std::cout << "[ stats    ] " << st.batches << " batches in " << st.syncs << " syncs ("
            << static_cast<double>(st.batches) / static_cast<double>(st.syncs) << " batches/sync), "
            << static_cast<double>(st.batches) / secs << " commits/s\n";
  for (int t = 0; t < kThreads; ++t) {
    std::vector<MessageId> ids = ListIds(static_cast<Bucket>(t), "user" + std::to_string(t));
    ASSERT_EQ(ids.size(), size_t{kPerThread});
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(ids[i], (MessageId{static_cast<uint64_t>(i), static_cast<uint32_t>(t), 1}));
    }
    EXPECT_EQ(*store_->ReadBody(ids[123]), "body " + ids[123].ToHex());
  }
}

// Closed-loop writers (each waits for its commit, like sessions do): groups
// hold at most one batch per writer, still fewer syncs than batches.
TEST_F(StoreTest, ConcurrentCommitsShareSyncs) {
  constexpr int kThreads = 8, kPerThread = 100;
  std::atomic<int> failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Batch b;
        b.PutMessage(1, "w" + std::to_string(t), TestMessage({static_cast<uint64_t>(i), 1, 1}),
                     &kBody);
        if (!store_->Commit(std::move(b)).ok()) ++failed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failed.load(), 0);
  const Store::Stats st = store_->stats();
  EXPECT_EQ(st.batches, uint64_t{kThreads * kPerThread});
  EXPECT_LT(st.syncs, st.batches);
  std::cout << "[ stats    ] closed loop, " << kThreads << " writers: " << st.batches
            << " batches in " << st.syncs << " syncs ("
            << static_cast<double>(st.batches) / static_cast<double>(st.syncs) << " batches/sync), "
            << static_cast<double>(st.batches) / secs << " commits/s\n";
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(ListIds(1, "w" + std::to_string(t)).size(), 100u);
}

TEST_F(StoreTest, SequentialCommitsSyncEachTime) {
  constexpr int kCommits = 50;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCommits; ++i) {
    Batch b;
    b.PutMessage(1, "seq", TestMessage({static_cast<uint64_t>(i), 1, 1}), &kBody);
    ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(store_->stats().syncs, uint64_t{kCommits});
  EXPECT_EQ(store_->stats().last_group, 1u);
  std::cout << "[ stats    ] sequential Commit(): " << kCommits / secs << " commits/s\n";
}

TEST_F(StoreTest, CloseDrainsThenRefusesButReadsStillWork) {
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    Batch b;
    b.PutMessage(1, "kim", TestMessage({static_cast<uint64_t>(i), 1, 1}), &kBody);
    store_->Submit(std::move(b), [&](Status s) { ok += s.ok() ? 1 : 0; });
  }
  store_->Close();
  EXPECT_EQ(ok.load(), 100);  // queued before Close: all committed
  EXPECT_EQ(store_->pending(), 0u);
  bool called = false;
  Batch late;
  late.PutMessage(1, "kim", TestMessage({1000, 1, 1}), &kBody);
  store_->Submit(std::move(late), [&](Status s) {
    EXPECT_EQ(s.code(), Code::kUnavailable);
    called = true;
  });
  EXPECT_TRUE(called);  // at once, on this thread
  EXPECT_EQ(store_->Commit(Batch()).code(), Code::kUnavailable);
  EXPECT_EQ(ListIds(1, "kim").size(), 100u);
  store_->Close();  // idempotent
  Reopen();
  EXPECT_EQ(ListIds(1, "kim").size(), 100u);
}

TEST_F(StoreTest, CommitFromCallbackIsRefused) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> inner;
  store_->Submit(Batch(), [&](Status) {
    Status s = store_->Commit(Batch());
    std::lock_guard lock(mu);
    inner = s;
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return inner.has_value(); }));
  EXPECT_EQ(inner->code(), Code::kInternal);
}

TEST_F(StoreTest, TwentyMebibyteBodyRoundTripsThroughBlobFiles) {
  std::string body(20 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>((i * 131 + (i >> 12)) & 0xff);
  const MessageId id{77, 7, 7};
  Batch b;
  b.PutMessage(8, "liz", TestMessage(id, 1, body.size()), &body);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_EQ(*store_->ReadBody(id), body);
  Reopen();  // recovery flushes the memtable: the body lands in a blob file
  Result<std::string> read = store_->ReadBody(id);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(*read == body);
  bool blob = false;
  for (const auto& e : std::filesystem::directory_iterator(MakeOptions().data_dir + "/db")) {
    blob = blob || e.path().extension() == ".blob";
  }
  EXPECT_TRUE(blob);
}

// The newest WAL file of the store's DB.
std::filesystem::path NewestWal(const std::string& db_dir) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(db_dir)) {
    if (e.path().extension() == ".log" && (newest.empty() || e.path() > newest)) newest = e.path();
  }
  return newest;
}

TEST_F(StoreTest, TornWalTailIsDetectedAndDropped) {
  for (int i = 0; i < 20; ++i) {
    Batch b;
    b.PutMessage(1, "tom", TestMessage({static_cast<uint64_t>(i), 1, 1}), &kBody);
    ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  }
  const std::filesystem::path wal = NewestWal(MakeOptions().data_dir + "/db");
  ASSERT_FALSE(wal.empty());
  const uintmax_t before = std::filesystem::file_size(wal);
  const std::string big(10000, 'b');
  Batch last;
  last.PutMessage(1, "tom", TestMessage({100, 1, 1}), &big);
  ASSERT_TRUE(store_->Commit(std::move(last)).ok());
  const uintmax_t after = std::filesystem::file_size(wal);
  ASSERT_GT(after, before + big.size());
  store_.reset();
  // A crash in the middle of the last write: half of its record reached the
  // disk. Then garbage where the rest would be.
  std::filesystem::resize_file(wal, before + (after - before) / 2);
  {
    std::ofstream out(wal, std::ios::binary | std::ios::app);
    out << std::string(100, '\xab');
  }
  Reopen();
  std::vector<MessageId> ids = ListIds(1, "tom");
  ASSERT_EQ(ids.size(), 20u);  // every complete record, nothing of the torn one
  EXPECT_EQ(ids.back(), (MessageId{19, 1, 1}));
  EXPECT_EQ(store_->ReadBody({100, 1, 1}).status().code(), Code::kNotFound);
  Batch again;
  again.PutMessage(1, "tom", TestMessage({200, 1, 1}), &kBody);
  EXPECT_TRUE(store_->Commit(std::move(again)).ok());  // writable after recovery
}

}  // namespace
}  // namespace porcupine::store
