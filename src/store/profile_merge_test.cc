#include "store/profile_merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "store/store.h"

namespace porcupine::store {
namespace {

Folder MakeFolder(uint32_t id, const std::string& name, uint32_t reserved = 0) {
  Folder f;
  f.set_id(id);
  f.set_name(name);
  f.set_uidvalidity(1000 + id);
  f.set_uid_reserved(reserved);
  f.set_subscribed(true);
  return f;
}

// A user's profile as created: INBOX and Trash.
Profile Base() {
  Profile p;
  p.set_version(1);
  p.set_user("alice@example.test");
  p.set_password_hash("h1");
  p.set_hlc(100);
  *p.add_folders() = MakeFolder(kInboxFolder, "INBOX", 1024);
  *p.add_folders() = MakeFolder(2, "Trash");
  p.set_last_uidvalidity(1002);
  return p;
}

// {name: id} of the profile's folders.
std::map<std::string, uint32_t> Folders(const Profile& p) {
  std::map<std::string, uint32_t> out;
  for (const Folder& f : p.folders()) out[f.name()] = f.id();
  return out;
}

const Folder* Find(const Profile& p, const std::string& name) {
  for (const Folder& f : p.folders()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

bool Same(const Profile& a, const Profile& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

TEST(MergeProfilesTest, ACopyDerivedFromTheOtherReplacesIt) {
  const Profile base = Base();
  Profile next = base;
  next.set_hlc(200);
  next.set_password_hash("h2");
  *next.add_folders() = MakeFolder(7, "Work");
  next.mutable_folders(0)->set_uid_reserved(2048);
  next.mutable_folders(1)->set_name("Bin");  // renamed
  EXPECT_TRUE(Same(MergeProfiles(base, next), next));
  EXPECT_TRUE(Same(MergeProfiles(next, base), next)) << "in either order";
  // A deletion is not undone by a copy from before it.
  Profile deleted = next;
  deleted.set_hlc(300);
  deleted.mutable_folders()->DeleteSubrange(2, 1);
  MarkFolderDeleted(deleted, 7);
  EXPECT_TRUE(Same(MergeProfiles(next, deleted), deleted));
  EXPECT_TRUE(Same(MergeProfiles(deleted, base), deleted));
  EXPECT_TRUE(Same(MergeProfiles(deleted, deleted), deleted));
}

TEST(MergeProfilesTest, ChangesOnBothSidesOfAPartitionAreAllKept) {
  const Profile base = Base();
  // Side A creates a folder and files mail in it.
  Profile a = base;
  a.set_hlc(200);
  *a.add_folders() = MakeFolder(NewFolderId(a, 11), "Left", 1024);
  // Side B reserves INBOX UIDs later, renames Trash and creates a folder.
  Profile b = base;
  b.set_hlc(250);
  b.set_password_hash("h2");
  b.mutable_folders(0)->set_uid_reserved(2048);
  b.mutable_folders(1)->set_name("Bin");
  *b.add_folders() = MakeFolder(NewFolderId(b, 22), "Right", 1024);
  const Profile m = MergeProfiles(a, b);
  EXPECT_TRUE(Same(m, MergeProfiles(b, a))) << "the same result in either order";
  EXPECT_EQ(m.hlc(), 251u) << "newer than both copies, which it differs from";
  EXPECT_EQ(m.password_hash(), "h2") << "the newer copy's";
  const auto names = Folders(m);
  EXPECT_EQ(names.size(), 4u);
  EXPECT_EQ(names.count("Left"), 1u) << "the older side's new folder is kept";
  EXPECT_EQ(names.count("Right"), 1u);
  EXPECT_EQ(names.count("Bin"), 1u) << "the newer side's rename";
  EXPECT_EQ(Find(m, "INBOX")->uid_reserved(), 2048u) << "reservations only grow";
  EXPECT_NE(names.at("Left"), names.at("Right")) << "random ids: no collision";
  // Merging again changes nothing.
  EXPECT_TRUE(Same(MergeProfiles(m, a), m));
  EXPECT_TRUE(Same(MergeProfiles(b, m), m));
}

TEST(MergeProfilesTest, AFolderDeletedOnOneSideStaysDeleted) {
  Profile a = Base();
  a.set_hlc(200);
  a.mutable_folders(1)->set_uid_reserved(1024);  // Trash got a UID block on side A
  Profile b = Base();
  b.set_hlc(150);
  b.mutable_folders()->DeleteSubrange(1, 1);
  MarkFolderDeleted(b, 2);
  const Profile m = MergeProfiles(a, b);
  EXPECT_EQ(Find(m, "Trash"), nullptr);
  EXPECT_EQ(m.deleted_folders_size(), 1);
  EXPECT_EQ(m.deleted_folders(0), 2u);
}

TEST(MergeProfilesTest, TwoFoldersOfOneNameKeepTheirMessagesApart) {
  Profile a = Base();
  a.set_hlc(200);
  *a.add_folders() = MakeFolder(5000000, "Work");
  Profile b = Base();
  b.set_hlc(210);
  *b.add_folders() = MakeFolder(3000000, "Work");
  const Profile m = MergeProfiles(a, b);
  EXPECT_TRUE(Same(m, MergeProfiles(b, a)));
  const auto names = Folders(m);
  EXPECT_EQ(names.at("Work"), 3000000u) << "the lower id keeps the name";
  EXPECT_EQ(names.at("Work-5000000"), 5000000u);
}

TEST(MergeProfilesTest, ATombstoneTakesTheNewerCopyWhole) {
  Profile live = Base();
  live.set_hlc(200);
  *live.add_folders() = MakeFolder(9, "Kept");
  Profile gone = Base();
  gone.set_hlc(300);
  gone.set_tombstone(true);
  gone.clear_folders();
  EXPECT_TRUE(Same(MergeProfiles(live, gone), gone));
  live.set_hlc(400);  // created again after the deletion
  EXPECT_TRUE(Same(MergeProfiles(gone, live), live));
}

TEST(MergeProfilesTest, NewFolderIdsAreNeverInUseOrDeleted) {
  Profile p = Base();
  const uint32_t first = NewFolderId(p, 42);
  EXPECT_GE(first, 1u << 20);
  EXPECT_LT(first, 1u << 31);
  *p.add_folders() = MakeFolder(first, "A");
  EXPECT_NE(NewFolderId(p, 42), first) << "the same seed probes past a folder in use";
  p.mutable_folders()->RemoveLast();
  MarkFolderDeleted(p, first);
  EXPECT_NE(NewFolderId(p, 42), first) << "nor a deleted one";
  for (uint32_t i = 0; i < kMaxDeletedFolders + 10; ++i) MarkFolderDeleted(p, 100 + i);
  EXPECT_EQ(static_cast<size_t>(p.deleted_folders_size()), kMaxDeletedFolders) << "bounded";
  EXPECT_TRUE(std::is_sorted(p.deleted_folders().begin(), p.deleted_folders().end()));
}

}  // namespace
}  // namespace porcupine::store
