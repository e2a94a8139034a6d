#include "replication/log_record.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace porcupine::replication {
namespace {

struct Case {
  std::string name;
  Entry entry;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  {
    Entry e;
    e.object.kind = ObjectRef::Kind::kMessage;
    e.object.user = "alice";
    e.object.folder = 7;
    e.object.id = std::string("\x00\x01\xff\x10 message-id!", 16);  // binary, with NULs
    e.hlc = 0x0123456789abcdefULL;
    e.remaining = {2, 5, 9};
    e.takeover = false;
    e.created_ms = 1'700'000'000'123;
    e.bytes = 4096;
    cases.push_back({"message", e});
  }
  {
    Entry e;
    e.object.kind = ObjectRef::Kind::kMessage;
    e.object.user = "bob@example.org";
    e.object.folder = UINT32_MAX;
    e.object.id = std::string(16, '\0');
    e.hlc = UINT64_MAX;
    e.remaining = {1, UINT32_MAX};
    e.takeover = true;
    e.created_ms = INT64_MAX;
    e.bytes = UINT64_MAX;
    cases.push_back({"takeover_message_extremes", e});
  }
  {
    Entry e;
    e.object.kind = ObjectRef::Kind::kProfile;
    e.object.user = "carol";
    e.hlc = 42;
    e.remaining = {3};
    e.created_ms = 5;
    e.bytes = 120;
    cases.push_back({"profile", e});
  }
  {
    Entry e;
    e.object.kind = ObjectRef::Kind::kProfile;
    e.object.user = "dave";
    e.hlc = 1;
    e.takeover = true;
    cases.push_back({"takeover_profile_no_targets", e});
  }
  return cases;
}

void ExpectSameEntry(const Entry& got, const Entry& want) {
  EXPECT_TRUE(got.object == want.object);
  EXPECT_EQ(got.object.kind, want.object.kind);
  EXPECT_EQ(got.object.user, want.object.user);
  EXPECT_EQ(got.object.folder, want.object.folder);
  EXPECT_EQ(got.object.id, want.object.id);
  EXPECT_EQ(got.hlc, want.hlc);
  EXPECT_EQ(got.remaining, want.remaining);
  EXPECT_EQ(got.takeover, want.takeover);
  EXPECT_EQ(got.created_ms, want.created_ms);
  EXPECT_EQ(got.bytes, want.bytes);
}

TEST(LogRecord, RoundTrip) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    ExpectSameEntry(FromRecord(ToRecord(c.entry)), c.entry);
  }
}

TEST(LogRecord, RoundTripThroughTheWireBytes) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::string bytes;
    ASSERT_TRUE(ToRecord(c.entry).SerializeToString(&bytes));
    store::LogRecord parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    ExpectSameEntry(FromRecord(parsed), c.entry);
  }
}

// The persisted numbers are a format (store/records.proto): version 1, kind 1
// for messages and 2 for profiles, targets in ascending order.
TEST(LogRecord, ToRecordWritesTheDocumentedFields) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const store::LogRecord r = ToRecord(c.entry);
    EXPECT_EQ(r.version(), 1u);
    EXPECT_EQ(r.kind(), c.entry.object.kind == ObjectRef::Kind::kMessage ? 1u : 2u);
    EXPECT_EQ(r.user(), c.entry.object.user);
    EXPECT_EQ(r.folder(), c.entry.object.folder);
    EXPECT_EQ(r.id(), c.entry.object.id);
    EXPECT_EQ(r.hlc(), c.entry.hlc);
    EXPECT_EQ(std::vector<uint32_t>(r.remaining().begin(), r.remaining().end()),
              std::vector<uint32_t>(c.entry.remaining.begin(), c.entry.remaining.end()));
    EXPECT_EQ(r.takeover(), c.entry.takeover);
    EXPECT_EQ(r.created_ms(), c.entry.created_ms);
    EXPECT_EQ(r.bytes(), c.entry.bytes);
  }
}

TEST(LogRecord, FromRecordCollapsesRepeatedTargets) {
  store::LogRecord r;
  r.set_version(1);
  r.set_kind(1);
  r.set_user("alice");
  r.add_remaining(5);
  r.add_remaining(2);
  r.add_remaining(5);
  EXPECT_EQ(FromRecord(r).remaining, (std::set<NodeId>{2, 5}));
}

}  // namespace
}  // namespace porcupine::replication
