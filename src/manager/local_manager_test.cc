// LocalManager's folder operations and per-user UID sequencer (DESIGN.md §6
// "IMAP specifics") on a one-node view, with a fake profile writer that
// records every write and can be made to fail. The sequencer's invariant,
// checked throughout: a UID is handed out only once a written profile
// reserves it ("reserve, then use"), so that a new manager, which continues at
// the profile's reservation, never hands out a UID twice.
#include "manager/local_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/hash.h"
#include "store/store.h"

namespace porcupine::manager {
namespace {

using cluster::Member;
using cluster::UserMap;
using cluster::View;
using Kind = FolderOp::Kind;

constexpr NodeId kSelf = 1;
constexpr NodeId kOther = 2;
constexpr uint32_t kBuckets = 8;
constexpr uint32_t kUidBlock = 1024;  // UIDs LocalManager reserves per profile write
constexpr int64_t kStartMs = 1'700'000'000'000;
const std::string kUser = "alice@example.test";

uint32_t BucketOfUser(const std::string& user) { return BucketOf(user, kBuckets); }

Member MakeMember(NodeId id) { return {id, 1, "10.0.0." + std::to_string(id) + ":7000", ""}; }

// The first view of a cluster of kSelf alone: it manages every bucket.
View OneNodeView(Epoch epoch) {
  View v;
  v.epoch = epoch;
  v.members = {MakeMember(kSelf)};
  v.user_map = UserMap(kBuckets, kSelf, epoch);
  v.joined = {kSelf};
  return v;
}

// The view after `prev` with members `ids`, in which `bucket`'s entry goes to
// `manager`, stamped with the new epoch (as UserMap::Recompute stamps an
// entry that changed; with the same manager it is a restamp).
View NextView(const View& prev, Epoch epoch, uint32_t bucket, NodeId manager,
              const std::vector<NodeId>& ids) {
  View v = prev;
  v.epoch = epoch;
  v.base_epoch = prev.epoch;
  v.members.clear();
  v.joined.clear();
  for (NodeId id : ids) {
    v.members.push_back(MakeMember(id));
    if (!prev.Contains(id)) v.joined.push_back(id);
  }
  v.user_map.Set(bucket, manager, epoch);
  return v;
}

// Completes the reconstruction for `v` at `m`: every member sends its
// announcement set; kSelf's carries `profiles` (the replicas its scan found).
void Rebuild(LocalManager& m, const View& v, const std::vector<store::Profile>& profiles = {}) {
  for (const Member& member : v.members) {
    RebuildChunk chunk{v.epoch, 0, 1, {}};
    if (member.id == kSelf) {
      for (const store::Profile& p : profiles) {
        const uint32_t b = BucketOfUser(p.user());
        chunk.buckets.push_back({b, v.user_map.EpochOf(b), 1, {{p.user(), false, p}}});
      }
    }
    m.ApplyRebuild(member.id, chunk);
  }
}

const store::Folder* FolderIn(const store::Profile& p, const std::string& name) {
  for (const store::Folder& f : p.folders()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

const FolderStatus* FolderIn(const FolderState& st, const std::string& name) {
  for (const FolderStatus& f : st.folders) {
    if (f.folder.name() == name) return &f;
  }
  return nullptr;
}

std::vector<std::string> NamesOf(const FolderState& st) {
  std::vector<std::string> out;
  for (const FolderStatus& f : st.folders) out.push_back(f.folder.name());
  return out;
}

// The profile replicas: records every write (thread-safe). A write suspends
// once, as a real one does, so that concurrent callers interleave with it.
class FakeWriter : public ProfileWriter {
 public:
  asio::awaitable<Status> Write(store::Profile p) override {
    asio::any_io_executor ex = co_await asio::this_coro::executor;
    co_await asio::post(ex, asio::use_awaitable);
    std::lock_guard lock(mu_);
    ++attempts_;
    if (fail_) co_return Status::IoError("injected write failure");
    // Last writer wins by hlc: each change of a profile must be newer.
    auto last = last_hlc_.find(p.user());
    if (last != last_hlc_.end() && p.hlc() <= last->second) ++stale_writes_;
    last_hlc_[p.user()] = p.hlc();
    writes_.push_back(std::move(p));
    co_return Status::Ok();
  }

  void SetFail(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }
  size_t writes() {
    std::lock_guard lock(mu_);
    return writes_.size();
  }
  size_t attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  size_t stale_writes() {
    std::lock_guard lock(mu_);
    return stale_writes_;
  }
  // The newest profile of `user` written. REQUIRES: one was written.
  store::Profile Last(const std::string& user) {
    std::lock_guard lock(mu_);
    for (auto it = writes_.rbegin(); it != writes_.rend(); ++it) {
      if (it->user() == user) return *it;
    }
    ADD_FAILURE() << "no profile written for " << user;
    return {};
  }
  // The UIDs of `folder` reserved by the newest profile written (0: none).
  uint32_t Reserved(const std::string& user, const std::string& folder) {
    store::Profile p = Last(user);
    const store::Folder* f = FolderIn(p, folder);
    return f ? f->uid_reserved() : 0;
  }
  uint32_t Reserved(const std::string& user, uint32_t folder_id) {
    store::Profile p = Last(user);
    for (const store::Folder& f : p.folders()) {
      if (f.id() == folder_id) return f.uid_reserved();
    }
    return 0;
  }

 private:
  std::mutex mu_;
  bool fail_ = false;                         // guarded by mu_
  size_t attempts_ = 0;                       // guarded by mu_
  size_t stale_writes_ = 0;                   // guarded by mu_
  std::vector<store::Profile> writes_;        // guarded by mu_
  std::map<std::string, uint64_t> last_hlc_;  // guarded by mu_
};

// `n` allocations of one UID each in `folder`, yielding to the other
// coroutines between calls; the UIDs go to *out, a failure ends the loop and
// goes to *error.
asio::awaitable<void> AllocateMany(LocalManager* m, uint64_t epoch, std::string folder, int n,
                                   std::vector<uint32_t>* out, Status* error) {
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  for (int i = 0; i < n; ++i) {
    Result<FolderState> r = co_await m->Folders(kUser, FolderOp::Allocate(folder, 1), epoch);
    if (!r.ok()) {
      *error = r.status();
      co_return;
    }
    out->push_back(r->first_uid);
    co_await asio::post(ex, asio::use_awaitable);
  }
}

// Strictly increasing.
bool Increasing(const std::vector<uint32_t>& uids) {
  return std::adjacent_find(uids.begin(), uids.end(), std::greater_equal<uint32_t>()) == uids.end();
}

class LocalManagerFoldersTest : public testing::Test {
 protected:
  void SetUp() override {
    manager_ = MakeManager(kSelf);
    manager_->InstallView(view_);
    Rebuild(*manager_, view_);
    ASSERT_TRUE(manager_->Ready());
    ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kCreate, kUser, "hash", Epoch())).ok());
  }

  std::unique_ptr<LocalManager> MakeManager(NodeId self) {
    LocalManagerOptions o;
    o.self = self;
    o.buckets = kBuckets;
    o.rebuild_wait = std::chrono::milliseconds(20);
    o.uid_settle_window = kSettle;
    o.max_in_flight_per_folder = 8;
    o.clock = [this] { return now_; };
    return std::make_unique<LocalManager>(o, writer_, hlc_);
  }
  static constexpr std::chrono::milliseconds kSettle{5000};
  // The settle window's clock; time passes only when a test moves it.
  std::chrono::steady_clock::time_point now_{};
  std::vector<UidRange> InFlight(const std::string& folder = "INBOX") {
    Result<FolderState> st = Read();
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    const FolderStatus* f = st.ok() ? FolderIn(*st, folder) : nullptr;
    return f ? f->in_flight : std::vector<UidRange>{};
  }

  // The epoch of the user's bucket entry in view_ (the caller's view).
  uint64_t Epoch() const { return view_.user_map.EpochOf(BucketOfUser(kUser)); }

  template <typename T>
  T Run(asio::awaitable<T> op) {
    std::future<T> f = asio::co_spawn(io_, std::move(op), asio::use_future);
    io_.restart();
    io_.run();
    return f.get();
  }

  Result<FolderState> Op(LocalManager& m, FolderOp op) {
    return Run(m.Folders(kUser, std::move(op), Epoch()));
  }
  Result<FolderState> Op(FolderOp op) { return Op(*manager_, std::move(op)); }
  Result<FolderState> Read() { return Op({}); }
  std::vector<std::string> Names() {
    Result<FolderState> st = Read();
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? NamesOf(*st) : std::vector<std::string>{};
  }
  Status Create(const std::string& name) { return Op({Kind::kCreate, name}).status(); }
  Status Delete(const std::string& name) { return Op({Kind::kDelete, name}).status(); }
  Status Rename(const std::string& from, const std::string& to) {
    return Op({Kind::kRename, from, to}).status();
  }

  // Allocates `count` UIDs and checks that a written profile reserves them.
  Result<FolderState> Allocate(LocalManager& m, const std::string& folder, uint32_t count) {
    Result<FolderState> r = Op(m, FolderOp::Allocate(folder, count));
    if (r.ok()) {
      EXPECT_GT(r->first_uid, 0u);
      EXPECT_LT(r->first_uid + count - 1, writer_.Reserved(kUser, r->folder_id))
          << "UIDs handed out that no written profile reserves";
    }
    return r;
  }
  Result<FolderState> Allocate(const std::string& folder, uint32_t count = 1) {
    return Allocate(*manager_, folder, count);
  }
  uint32_t Uid(const std::string& folder = "INBOX") {
    Result<FolderState> r = Allocate(folder, 1);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->first_uid : 0;
  }
  uint32_t UidNext(const std::string& folder = "INBOX") {
    Result<FolderState> st = Read();
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    if (!st.ok()) return 0;
    const FolderStatus* f = FolderIn(*st, folder);
    EXPECT_NE(f, nullptr) << folder;
    return f ? f->uidnext : 0;
  }

  // Restamps the user's bucket entry (same manager, new epoch), as a view
  // change that reassigns the bucket does, and rebuilds it from the newest
  // profile written (the replicas' announcements).
  void Restamp() {
    view_ = NextView(view_, cluster::MakeEpoch(cluster::EpochCounter(view_.epoch) + 1, kSelf),
                     BucketOfUser(kUser), kSelf, {kSelf});
    manager_->InstallView(view_);
    Rebuild(*manager_, view_, {writer_.Last(kUser)});
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  Hlc hlc_{[this] { return now_ms_.load(); }};
  FakeWriter writer_;
  asio::io_context io_;
  View view_ = OneNodeView(cluster::MakeEpoch(1, kSelf));
  std::unique_ptr<LocalManager> manager_;
};

// ---- Folders -------------------------------------------------------------------

TEST_F(LocalManagerFoldersTest, NewUsersGetTheDefaultFolders) {
  Result<FolderState> st = Read();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(NamesOf(*st), (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Sent", "Trash"}));
  std::set<uint32_t> ids, validities;
  for (const FolderStatus& f : st->folders) {
    SCOPED_TRACE(f.folder.name());
    ids.insert(f.folder.id());
    validities.insert(f.folder.uidvalidity());
    EXPECT_TRUE(f.folder.subscribed());
    EXPECT_GE(f.folder.uidvalidity(), static_cast<uint32_t>(kStartMs / 1000));
    EXPECT_EQ(f.uidnext, 1u);
    EXPECT_EQ(f.folder.special_use(), f.folder.name() == "INBOX" ? "" : "\\" + f.folder.name());
  }
  EXPECT_EQ(ids.size(), 5u) << "folder ids are distinct";
  EXPECT_EQ(validities.size(), 5u) << "so are UIDVALIDITY values";
  EXPECT_EQ(FolderIn(*st, "INBOX")->folder.id(), store::kInboxFolder);
  EXPECT_EQ(FolderIn(*st, "INBOX")->folder.uidvalidity(), static_cast<uint32_t>(kStartMs / 1000));
  EXPECT_TRUE(st->mail_map.empty());
  // The created profile was written with the same folders.
  EXPECT_EQ(writer_.Last(kUser).folders_size(), 5);
}

TEST_F(LocalManagerFoldersTest, ReadingReportsTheMailMap) {
  ASSERT_TRUE(Run(manager_->UpdateMailMap(kUser, kSelf, true, 5, Epoch())).ok());
  Result<FolderState> st = Read();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->mail_map, std::vector<NodeId>{kSelf});
  Result<FolderState> uid = Allocate("INBOX", 1);
  ASSERT_TRUE(uid.ok());
  EXPECT_EQ(uid->mail_map, std::vector<NodeId>{kSelf}) << "a delivery learns where to store";
}

TEST_F(LocalManagerFoldersTest, UnknownUserAndWrongAssignment) {
  const FolderOp ops[] = {{}, {Kind::kCreate, "x"}, FolderOp::Allocate("INBOX", 1)};
  for (const FolderOp& op : ops) {
    SCOPED_TRACE(static_cast<int>(op.kind));
    EXPECT_EQ(Run(manager_->Folders("bob@example.test", op, Epoch())).status().code(),
              Code::kNotFound);
    EXPECT_EQ(Run(manager_->Folders(kUser, op, Epoch() + 1)).status().code(), Code::kAborted);
  }
}

TEST_F(LocalManagerFoldersTest, CreateAddsAFolder) {
  const size_t writes = writer_.writes();
  FolderOp op{Kind::kCreate, "Projects"};
  op.special_use = "\\Archive";
  now_ms_ += 5000;
  Result<FolderState> st = Op(op);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(writer_.writes(), writes + 1);
  const FolderStatus* f = FolderIn(*st, "Projects");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(st->folder_id, f->folder.id());
  EXPECT_EQ(st->uidvalidity, f->folder.uidvalidity());
  EXPECT_EQ(f->folder.uidvalidity(), static_cast<uint32_t>((kStartMs + 5000) / 1000));
  EXPECT_EQ(f->folder.special_use(), "\\Archive");
  EXPECT_FALSE(f->folder.subscribed()) << "CREATE does not subscribe";
  EXPECT_EQ(f->uidnext, 1u);
  for (const FolderStatus& other : st->folders) {
    if (&other == f) continue;
    EXPECT_NE(other.folder.id(), f->folder.id()) << other.folder.name();
  }
  ASSERT_NE(FolderIn(writer_.Last(kUser), "Projects"), nullptr) << "written to the replicas";
  EXPECT_EQ(Names(),
            (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Projects", "Sent", "Trash"}));
}

TEST_F(LocalManagerFoldersTest, CreateRefusesExistingNames) {
  ASSERT_TRUE(Create("Projects").ok());
  const size_t writes = writer_.writes();
  for (const char* name : {"Projects", "Sent", "INBOX", "inbox", "InBoX"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Create(name).code(), Code::kAlreadyExists);
  }
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Names().size(), 6u);
}

TEST_F(LocalManagerFoldersTest, CreateAddsTheParentsToo) {
  ASSERT_TRUE(Create("a/b/c").ok());
  EXPECT_EQ(Names(), (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Sent", "Trash", "a",
                                               "a/b", "a/b/c"}));
  // Existing parents are kept as they are.
  Result<FolderState> before = Read();
  ASSERT_TRUE(before.ok());
  const uint32_t a_id = FolderIn(*before, "a")->folder.id();
  ASSERT_TRUE(Create("a/d").ok());
  Result<FolderState> after = Read();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(FolderIn(*after, "a")->folder.id(), a_id);
  EXPECT_EQ(after->folders.size(), 9u);
  // The inbox's children are named after the canonical "INBOX".
  ASSERT_TRUE(Create("inbox/Lists").ok());
  EXPECT_NE(FolderIn(*Read(), "INBOX/Lists"), nullptr);
  EXPECT_EQ(Create("INBOX/Lists").code(), Code::kAlreadyExists);
}

TEST_F(LocalManagerFoldersTest, CreateRejectsBadNames) {
  const size_t writes = writer_.writes();
  const std::string names[] = {"",
                               "/",
                               "/a",
                               "a/",
                               "a//b",
                               "a*b",
                               "a%b",
                               "a\r\nb",
                               "a\nb",
                               std::string("a\0b", 3),
                               std::string(256, 'x')};
  for (const std::string& name : names) {
    SCOPED_TRACE(testing::PrintToString(name));
    EXPECT_EQ(Create(name).code(), Code::kInvalidArgument);
  }
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Names().size(), 5u);
  EXPECT_TRUE(Create(std::string(255, 'x')).ok()) << "the longest name allowed";
}

TEST_F(LocalManagerFoldersTest, DeleteRemovesAFolderAndNeverReusesItsId) {
  Result<FolderState> before = Read();
  ASSERT_TRUE(before.ok());
  std::set<uint32_t> ids;  // every id the user's folders ever had
  for (const FolderStatus& f : before->folders) ids.insert(f.folder.id());
  ASSERT_TRUE(Create("Projects").ok());
  const uint32_t projects_id = FolderIn(*Read(), "Projects")->folder.id();
  EXPECT_TRUE(ids.insert(projects_id).second);
  ASSERT_TRUE(Delete("Projects").ok());
  EXPECT_EQ(FolderIn(*Read(), "Projects"), nullptr);
  EXPECT_EQ(FolderIn(writer_.Last(kUser), "Projects"), nullptr) << "written to the replicas";
  EXPECT_EQ(writer_.Last(kUser).deleted_folders_size(), 1) << "remembered as deleted";
  EXPECT_EQ(Delete("Projects").code(), Code::kNotFound);
  // A new folder of the same name is a new folder: messages of the old one
  // (if any were left) cannot show up in it.
  for (const char* name : {"Projects", "Zeta", "Omega"}) {
    ASSERT_TRUE(Create(name).ok());
    const uint32_t id = FolderIn(*Read(), name)->folder.id();
    EXPECT_TRUE(ids.insert(id).second) << name << " got an id used before";
    ASSERT_TRUE(Delete(name).ok());
  }
}

TEST_F(LocalManagerFoldersTest, DeleteRefusesTheInboxAndMissingFolders) {
  const size_t writes = writer_.writes();
  EXPECT_EQ(Delete("INBOX").code(), Code::kFailedPrecondition);
  EXPECT_EQ(Delete("inbox").code(), Code::kFailedPrecondition);
  EXPECT_EQ(Delete("Nope").code(), Code::kNotFound);
  EXPECT_EQ(Delete("sent").code(), Code::kNotFound) << "other names are case-sensitive";
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Names().size(), 5u);
}

TEST_F(LocalManagerFoldersTest, RenameMovesTheChildrenAndKeepsIds) {
  ASSERT_TRUE(Create("a/b/c").ok());
  ASSERT_TRUE(Create("ab").ok());  // a sibling sharing the prefix, not a child
  Result<FolderState> before = Read();
  ASSERT_TRUE(before.ok());
  const uint32_t a = FolderIn(*before, "a")->folder.id();
  const uint32_t b = FolderIn(*before, "a/b")->folder.id();
  const uint32_t c = FolderIn(*before, "a/b/c")->folder.id();
  const uint32_t ab = FolderIn(*before, "ab")->folder.id();
  const uint32_t a_validity = FolderIn(*before, "a")->folder.uidvalidity();

  Result<FolderState> st = Op({Kind::kRename, "a", "x/y"});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->folder_id, a) << "the state names the renamed folder";
  EXPECT_EQ(st->uidvalidity, a_validity);
  EXPECT_EQ(NamesOf(*st), (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Sent", "Trash",
                                                    "ab", "x", "x/y", "x/y/b", "x/y/b/c"}));
  EXPECT_EQ(FolderIn(*st, "x/y")->folder.id(), a);
  EXPECT_EQ(FolderIn(*st, "x/y/b")->folder.id(), b);
  EXPECT_EQ(FolderIn(*st, "x/y/b/c")->folder.id(), c);
  EXPECT_EQ(FolderIn(*st, "ab")->folder.id(), ab);
  EXPECT_EQ(FolderIn(*st, "x/y")->folder.uidvalidity(), a_validity);
  EXPECT_NE(FolderIn(writer_.Last(kUser), "x/y/b/c"), nullptr) << "written to the replicas";
}

TEST_F(LocalManagerFoldersTest, RenameKeepsTheUidSequence) {
  ASSERT_TRUE(Create("a").ok());
  EXPECT_EQ(Uid("a"), 1u);
  EXPECT_EQ(Uid("a"), 2u);
  ASSERT_TRUE(Rename("a", "b").ok());
  EXPECT_EQ(UidNext("b"), 3u);
  EXPECT_EQ(Uid("b"), 3u);
}

TEST_F(LocalManagerFoldersTest, RenameRefusals) {
  ASSERT_TRUE(Create("a/b").ok());
  ASSERT_TRUE(Create("z").ok());
  const size_t writes = writer_.writes();
  struct Case {
    const char* from;
    const char* to;
    Code want;
  };
  const Case cases[] = {
      {"a", "z", Code::kAlreadyExists},          {"a", "Sent", Code::kAlreadyExists},
      {"a", "a", Code::kAlreadyExists},          {"nope", "q", Code::kNotFound},
      {"INBOX", "q", Code::kFailedPrecondition}, {"inbox", "q", Code::kFailedPrecondition},
      {"a", "INBOX", Code::kInvalidArgument},    {"a", "inbox", Code::kInvalidArgument},
      {"a", "a/b/c", Code::kInvalidArgument},    {"a", "", Code::kInvalidArgument},
      {"a", "q/", Code::kInvalidArgument},       {"a", "q*", Code::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.from) + " -> " + c.to);
    EXPECT_EQ(Rename(c.from, c.to).code(), c.want);
  }
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Names(), (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Sent", "Trash", "a",
                                               "a/b", "z"}));
}

TEST_F(LocalManagerFoldersTest, RenameNeverMakesTwoFoldersOfOneName) {
  // "x" is deleted while its child stays; renaming "a" (with a child "a/b")
  // to "x" would then rename "a/b" onto the existing "x/b".
  ASSERT_TRUE(Create("x/b").ok());
  ASSERT_TRUE(Delete("x").ok());
  ASSERT_TRUE(Create("a/b").ok());
  EXPECT_EQ(Rename("a", "x").code(), Code::kAlreadyExists);
  std::vector<std::string> names = Names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size())
      << testing::PrintToString(names);
  EXPECT_NE(FolderIn(*Read(), "a/b"), nullptr) << "nothing renamed";
}

TEST_F(LocalManagerFoldersTest, SubscribeAndUnsubscribe) {
  size_t writes = writer_.writes();
  ASSERT_TRUE(Op({Kind::kUnsubscribe, "Junk"}).ok());
  EXPECT_EQ(writer_.writes(), ++writes);
  EXPECT_FALSE(FolderIn(*Read(), "Junk")->folder.subscribed());
  EXPECT_FALSE(FolderIn(writer_.Last(kUser), "Junk")->subscribed()) << "written to the replicas";
  EXPECT_TRUE(FolderIn(*Read(), "Sent")->folder.subscribed()) << "only the named folder";
  // Unchanged: nothing to write.
  ASSERT_TRUE(Op({Kind::kUnsubscribe, "Junk"}).ok());
  EXPECT_EQ(writer_.writes(), writes);
  ASSERT_TRUE(Op({Kind::kSubscribe, "Junk"}).ok());
  EXPECT_EQ(writer_.writes(), ++writes);
  EXPECT_TRUE(FolderIn(*Read(), "Junk")->folder.subscribed());
  ASSERT_TRUE(Op({Kind::kSubscribe, "Junk"}).ok());
  EXPECT_EQ(writer_.writes(), writes);
  // The inbox by any case.
  ASSERT_TRUE(Op({Kind::kUnsubscribe, "inbox"}).ok());
  EXPECT_FALSE(FolderIn(*Read(), "INBOX")->folder.subscribed());
  // A folder that does not exist is neither created nor written.
  writes = writer_.writes();
  (void)Op({Kind::kSubscribe, "Nope"});
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(FolderIn(*Read(), "Nope"), nullptr);
}

TEST_F(LocalManagerFoldersTest, AFailingWriteChangesNothing) {
  writer_.SetFail(true);
  EXPECT_EQ(Create("Projects").code(), Code::kIoError);
  EXPECT_EQ(Delete("Sent").code(), Code::kIoError);
  EXPECT_EQ(Rename("Sent", "Sent2").code(), Code::kIoError);
  EXPECT_EQ(Op({Kind::kUnsubscribe, "Sent"}).status().code(), Code::kIoError);
  writer_.SetFail(false);
  EXPECT_EQ(Names(), (std::vector<std::string>{"Drafts", "INBOX", "Junk", "Sent", "Trash"}));
  EXPECT_TRUE(FolderIn(*Read(), "Sent")->folder.subscribed());
  EXPECT_TRUE(Create("Projects").ok()) << "nothing stays locked";
}

TEST_F(LocalManagerFoldersTest, ProfileWritesAreNewerEachTime) {
  ASSERT_TRUE(Create("a").ok());
  ASSERT_TRUE(Rename("a", "b").ok());
  ASSERT_TRUE(Delete("b").ok());
  for (int i = 0; i < 3 * static_cast<int>(kUidBlock); ++i) ASSERT_GT(Uid(), 0u);
  ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kSetPassword, kUser, "h2", Epoch())).ok());
  ASSERT_TRUE(Create("c").ok());
  EXPECT_EQ(writer_.stale_writes(), 0u) << "a profile write with an older hlc loses (LWW)";
  EXPECT_EQ(writer_.Last(kUser).password_hash(), "h2");
  EXPECT_NE(FolderIn(writer_.Last(kUser), "c"), nullptr);
}

TEST_F(LocalManagerFoldersTest, PasswordChangesReplaceTheScramSecrets) {
  ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kSetPassword, kUser,
                                       PasswordSecrets("h2", "SCRAM-SHA-256$4096:s$k:v"), Epoch()))
                  .ok());
  EXPECT_EQ(writer_.Last(kUser).scram_sha256(), "SCRAM-SHA-256$4096:s$k:v");
  Result<UserInfo> info = Run(manager_->LookupUser(kUser, Epoch(), true));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->scram_sha256, "SCRAM-SHA-256$4096:s$k:v");
  EXPECT_TRUE(Run(manager_->LookupUser(kUser, Epoch(), false))->scram_sha256.empty());
  // A new password without secrets (an older node sent it) drops the old
  // password's secrets: they would let the old password log in.
  ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kSetPassword, kUser, "h3", Epoch())).ok());
  EXPECT_EQ(writer_.Last(kUser).scram_sha256(), "");
}

// ---- UID allocation ------------------------------------------------------------

class LocalManagerFoldersUidTest : public LocalManagerFoldersTest {};

TEST_F(LocalManagerFoldersUidTest, ConsecutiveFromOne) {
  Result<FolderState> r = Allocate("INBOX", 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_uid, 1u);
  EXPECT_EQ(r->folder_id, store::kInboxFolder);
  EXPECT_EQ(r->uidvalidity, FolderIn(*Read(), "INBOX")->folder.uidvalidity());
  EXPECT_EQ(FolderIn(*r, "INBOX")->uidnext, 2u) << "the state reports the new uidnext";
  EXPECT_EQ(Uid(), 2u);
  EXPECT_EQ(Uid("inbox"), 3u) << "the inbox by any case";
  Result<FolderState> five = Allocate("INBOX", 5);
  ASSERT_TRUE(five.ok());
  EXPECT_EQ(five->first_uid, 4u);
  EXPECT_EQ(UidNext(), 9u);
  EXPECT_EQ(Uid(), 9u);
}

TEST_F(LocalManagerFoldersUidTest, EachFolderHasItsOwnSequence) {
  EXPECT_EQ(Uid("INBOX"), 1u);
  EXPECT_EQ(Uid("INBOX"), 2u);
  Result<FolderState> sent = Allocate("Sent", 1);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->first_uid, 1u);
  EXPECT_EQ(sent->folder_id, FolderIn(*Read(), "Sent")->folder.id());
  EXPECT_EQ(sent->uidvalidity, FolderIn(*Read(), "Sent")->folder.uidvalidity());
  EXPECT_EQ(Uid("INBOX"), 3u);
  ASSERT_TRUE(Create("a/b").ok());
  EXPECT_EQ(Uid("a/b"), 1u);
  EXPECT_EQ(UidNext("INBOX"), 4u);
  EXPECT_EQ(UidNext("Sent"), 2u);
  EXPECT_EQ(UidNext("a/b"), 2u);
  EXPECT_EQ(UidNext("a"), 1u);
}

TEST_F(LocalManagerFoldersUidTest, BadRequests) {
  const size_t writes = writer_.writes();
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 0)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", kUidBlock + 1)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Op(FolderOp::Allocate("Nope", 1)).status().code(), Code::kNotFound);
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Uid(), 1u) << "nothing was used up";
  // The largest request is a whole block.
  Result<FolderState> big = Allocate("INBOX", kUidBlock);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->first_uid, 2u);
  EXPECT_EQ(Uid(), kUidBlock + 2);
}

TEST_F(LocalManagerFoldersUidTest, ReservesOneBlockPerProfileWrite) {
  const size_t writes = writer_.writes();
  EXPECT_EQ(writer_.Reserved(kUser, "INBOX"), 0u) << "nothing reserved before the first UID";
  std::vector<uint32_t> uids;
  for (uint32_t i = 0; i < 3 * kUidBlock + 10; ++i) {
    uids.push_back(Uid());
    // A write at the first UID of each block, none in between.
    EXPECT_EQ(writer_.writes(), writes + i / kUidBlock + 1) << "uid " << uids.back();
  }
  for (size_t i = 0; i < uids.size(); ++i) ASSERT_EQ(uids[i], i + 1);
  EXPECT_EQ(writer_.Reserved(kUser, "INBOX"), 4 * kUidBlock + 1);
  EXPECT_EQ(UidNext(), 3 * kUidBlock + 11);
  EXPECT_EQ(writer_.Reserved(kUser, "Sent"), 0u) << "other folders reserve nothing";
}

TEST_F(LocalManagerFoldersUidTest, AMinimumUidMovesTheSequencerUp) {
  EXPECT_EQ(Uid(), 1u);
  // Inside the block: no write.
  size_t writes = writer_.writes();
  Result<FolderState> r = Op(FolderOp::Allocate("INBOX", 2, 100));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_uid, 100u);
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Uid(), 102u);
  // A minimum below the next UID changes nothing.
  r = Op(FolderOp::Allocate("INBOX", 1, 50));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_uid, 103u);
  // Count 0 only moves up; past the reservation it reserves before use.
  r = Op(FolderOp::Allocate("INBOX", 0, 5000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(writer_.writes(), writes + 1);
  EXPECT_GT(writer_.Reserved(kUser, "INBOX"), 5000u);
  EXPECT_EQ(UidNext(), 5000u);
  EXPECT_EQ(Uid(), 5000u);
  writes = writer_.writes();
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 0, 0)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 1, 0xFFFFFFFFu)).status().code(),
            Code::kResourceExhausted);
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Uid(), 5001u) << "nothing was used up";
}

TEST_F(LocalManagerFoldersUidTest, RequestsAcrossABlockBoundary) {
  Result<FolderState> a = Allocate("INBOX", 1000);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first_uid, 1u);
  const size_t writes = writer_.writes();
  Result<FolderState> b = Allocate("INBOX", 1000);  // 1001..2000: past the first block
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first_uid, 1001u);
  EXPECT_EQ(writer_.writes(), writes + 1);
  EXPECT_EQ(Uid(), 2001u);
}

TEST_F(LocalManagerFoldersUidTest, AFailingWriterGivesAnErrorAndNoUids) {
  // Use the first block up exactly: the next UID needs a reservation.
  Result<FolderState> block = Allocate("INBOX", kUidBlock);
  ASSERT_TRUE(block.ok());
  ASSERT_EQ(block->first_uid, 1u);
  writer_.SetFail(true);
  const size_t attempts = writer_.attempts();
  for (int i = 0; i < 3; ++i) {
    Result<FolderState> r = Op(FolderOp::Allocate("INBOX", 1));
    EXPECT_EQ(r.status().code(), Code::kIoError);
  }
  EXPECT_EQ(writer_.attempts(), attempts + 3) << "each try attempts the reservation";
  EXPECT_EQ(UidNext(), kUidBlock + 1) << "nothing was handed out";
  // A fresh folder's first UID needs a reservation too.
  EXPECT_EQ(Op(FolderOp::Allocate("Sent", 1)).status().code(), Code::kIoError);
  writer_.SetFail(false);
  EXPECT_EQ(Uid(), kUidBlock + 1) << "no UID lost, none handed out twice";
  EXPECT_EQ(Uid("Sent"), 1u);
}

TEST_F(LocalManagerFoldersUidTest, ConcurrentCoroutinesGetDistinctUids) {
  constexpr int kCoroutines = 8;
  constexpr int kEach = 400;  // 3200 UIDs: four blocks
  std::vector<std::vector<uint32_t>> uids(kCoroutines);
  std::vector<Status> errors(kCoroutines);
  const size_t writes = writer_.writes();
  for (int i = 0; i < kCoroutines; ++i) {
    asio::co_spawn(io_, AllocateMany(manager_.get(), Epoch(), "INBOX", kEach, &uids[i], &errors[i]),
                   asio::detached);
  }
  // Folder changes of the same user in between queue with the reservations.
  std::vector<uint32_t> sent;
  Status sent_error;
  asio::co_spawn(io_, AllocateMany(manager_.get(), Epoch(), "Sent", 50, &sent, &sent_error),
                 asio::detached);
  auto create = asio::co_spawn(io_, manager_->Folders(kUser, {Kind::kCreate, "Projects"}, Epoch()),
                               asio::use_future);
  io_.restart();
  io_.run();
  ASSERT_TRUE(create.get().ok());
  ASSERT_TRUE(sent_error.ok()) << sent_error.ToString();
  EXPECT_TRUE(Increasing(sent));
  std::set<uint32_t> all;
  bool interleaved = false;
  for (int i = 0; i < kCoroutines; ++i) {
    ASSERT_TRUE(errors[i].ok()) << errors[i].ToString();
    ASSERT_EQ(uids[i].size(), static_cast<size_t>(kEach));
    EXPECT_TRUE(Increasing(uids[i])) << "each caller sees its UIDs grow";
    interleaved |= uids[i].back() - uids[i].front() >= static_cast<uint32_t>(kEach);
    all.insert(uids[i].begin(), uids[i].end());
  }
  EXPECT_TRUE(interleaved) << "the coroutines did not run concurrently";
  ASSERT_EQ(all.size(), static_cast<size_t>(kCoroutines * kEach)) << "a UID was handed out twice";
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint32_t>(kCoroutines * kEach)) << "no gaps";
  EXPECT_LT(*all.rbegin(), writer_.Reserved(kUser, "INBOX"));
  EXPECT_LT(sent.back(), writer_.Reserved(kUser, "Sent"));
  // Four INBOX blocks, one Sent block, the create.
  EXPECT_EQ(writer_.writes(), writes + 6);
  EXPECT_EQ(writer_.stale_writes(), 0u);
  EXPECT_NE(FolderIn(writer_.Last(kUser), "Projects"), nullptr)
      << "no reservation overwrote the create";
  EXPECT_EQ(UidNext(), static_cast<uint32_t>(kCoroutines * kEach + 1));
}

TEST_F(LocalManagerFoldersUidTest, ConcurrentThreadsGetDistinctUids) {
  constexpr int kThreads = 4;
  constexpr int kCoroutines = 8;
  constexpr int kEach = 300;  // 2400 UIDs: three blocks
  asio::thread_pool pool(kThreads);
  std::vector<std::vector<uint32_t>> uids(kCoroutines);
  std::vector<Status> errors(kCoroutines);
  std::vector<std::future<void>> done;
  for (int i = 0; i < kCoroutines; ++i) {
    done.push_back(asio::co_spawn(
        pool, AllocateMany(manager_.get(), Epoch(), "INBOX", kEach, &uids[i], &errors[i]),
        asio::use_future));
  }
  for (std::future<void>& f : done) f.get();
  pool.join();
  std::set<uint32_t> all;
  for (int i = 0; i < kCoroutines; ++i) {
    ASSERT_TRUE(errors[i].ok()) << errors[i].ToString();
    ASSERT_EQ(uids[i].size(), static_cast<size_t>(kEach));
    EXPECT_TRUE(Increasing(uids[i]));
    all.insert(uids[i].begin(), uids[i].end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kCoroutines * kEach)) << "a UID was handed out twice";
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint32_t>(kCoroutines * kEach));
  EXPECT_LT(*all.rbegin(), writer_.Reserved(kUser, "INBOX"));
  EXPECT_EQ(writer_.Reserved(kUser, "INBOX"), 3 * kUidBlock + 1);
  EXPECT_EQ(writer_.stale_writes(), 0u);
}

// ---- \Recent -------------------------------------------------------------------

class LocalManagerRecentTest : public LocalManagerFoldersTest {
 protected:
  // Claims the INBOX UIDs below `below`; the horizon before the claim.
  uint32_t Claim(uint32_t below) {
    Result<FolderState> st = Op(FolderOp::ClaimRecent("INBOX", below));
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? FolderIn(*st, "INBOX")->recent_from : 0;
  }
  uint32_t Horizon() { return FolderIn(*Read(), "INBOX")->recent_from; }
};

TEST_F(LocalManagerRecentTest, AClaimTakesTheUidsBelowItsBoundOnly) {
  ASSERT_TRUE(Allocate("INBOX", 5).ok());  // 1..5
  EXPECT_EQ(Claim(3), 1u) << "1 and 2 are the caller's";
  EXPECT_EQ(Horizon(), 3u) << "3..5 (say, still on their way) are nobody's yet";
  EXPECT_EQ(Claim(2), 3u);
  EXPECT_EQ(Horizon(), 3u) << "the horizon never goes back";
  EXPECT_EQ(Claim(100), 3u);
  EXPECT_EQ(Horizon(), 6u) << "never past the UIDs handed out";
  ASSERT_EQ(Uid(), 6u);
  EXPECT_EQ(Claim(0), 6u);
  EXPECT_EQ(Horizon(), 7u) << "0: every UID handed out";
}

TEST_F(LocalManagerRecentTest, AClaimMadeWhileABlockIsReservedStands) {
  ASSERT_TRUE(Allocate("INBOX", kUidBlock).ok());  // the whole first block: 1..1024
  // The next UID needs a reservation (a profile write, which suspends);
  // a session claims everything meanwhile.
  auto allocated = asio::co_spawn(
      io_, manager_->Folders(kUser, FolderOp::Allocate("INBOX", 1), Epoch()), asio::use_future);
  auto claimed = asio::co_spawn(
      io_, manager_->Folders(kUser, FolderOp::ClaimRecent("INBOX", 0), Epoch()), asio::use_future);
  io_.restart();
  io_.run();
  ASSERT_EQ(allocated.get()->first_uid, kUidBlock + 1);
  ASSERT_EQ(FolderIn(*claimed.get(), "INBOX")->recent_from, 1u);
  EXPECT_EQ(Horizon(), kUidBlock + 1) << "1..1024 stay claimed; the new UID is nobody's yet";
}

// ---- UIDs in flight (FolderStatus::in_flight) -------------------------------------

using Ranges = std::vector<UidRange>;

TEST_F(LocalManagerFoldersUidTest, HandedOutUidsAreInFlightForTheSettleWindow) {
  EXPECT_EQ(InFlight(), Ranges{});
  ASSERT_EQ(Uid(), 1u);
  now_ += std::chrono::milliseconds(1000);
  ASSERT_TRUE(Allocate("INBOX", 3).ok());
  EXPECT_EQ(InFlight(), (Ranges{{1, 1}, {2, 3}})) << "oldest first";
  EXPECT_EQ(InFlight("Sent"), Ranges{}) << "per folder";
  now_ += kSettle - std::chrono::milliseconds(1000);
  EXPECT_EQ(InFlight(), (Ranges{{2, 3}})) << "the first one's window is over";
  now_ += std::chrono::milliseconds(1000);
  EXPECT_EQ(InFlight(), Ranges{});
  // Moving the sequencer without handing anything out puts nothing in flight.
  ASSERT_TRUE(Op(FolderOp::Allocate("INBOX", 0, 100)).ok());
  EXPECT_EQ(InFlight(), Ranges{});
  EXPECT_EQ(Uid(), 100u);
  EXPECT_EQ(InFlight(), (Ranges{{100, 1}}));
}

TEST_F(LocalManagerFoldersUidTest, ReleasedUidsAreNoLongerInFlight) {
  ASSERT_TRUE(Allocate("INBOX", 10).ok());  // 1..10
  ASSERT_EQ(Uid(), 11u);
  const uint32_t inbox = store::kInboxFolder;
  Result<FolderState> r = Op(FolderOp::Release(inbox, {{3, 2}, {11, 1}, {50, 5}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FolderIn(*r, "INBOX")->in_flight, (Ranges{{1, 2}, {5, 6}})) << "a range splits";
  EXPECT_EQ(InFlight(), (Ranges{{1, 2}, {5, 6}}));
  ASSERT_TRUE(Op(FolderOp::Release(inbox, {{1, 10}})).ok());
  EXPECT_EQ(InFlight(), Ranges{});
  EXPECT_EQ(Uid(), 12u) << "released UIDs are spent, not handed out again";
  EXPECT_EQ(Op(FolderOp::Release(999, {{1, 1}})).status().code(), Code::kOk)
      << "an unknown folder has nothing in flight";
  EXPECT_EQ(Op(FolderOp::Release(inbox, Ranges(5000, UidRange{1, 1}))).status().code(),
            Code::kInvalidArgument);
}

TEST_F(LocalManagerFoldersUidTest, InFlightRangesPerFolderAreBounded) {
  for (int i = 0; i < 20; ++i) ASSERT_GT(Uid(), 0u);
  EXPECT_EQ(InFlight(),
            (Ranges{{13, 1}, {14, 1}, {15, 1}, {16, 1}, {17, 1}, {18, 1}, {19, 1}, {20, 1}}))
      << "the oldest are forgotten first";
}

TEST_F(LocalManagerFoldersUidTest, ANewAssignmentStartsWithNothingInFlight) {
  ASSERT_EQ(Uid(), 1u);
  Restamp();
  EXPECT_EQ(InFlight(), Ranges{}) << "soft state of the old assignment";
  const uint32_t next = Uid();
  EXPECT_EQ(InFlight(), (Ranges{{next, 1}}));
}

// ---- Manager changes: a new manager never hands out a UID twice -----------------

TEST_F(LocalManagerFoldersUidTest, ARestampedEntryContinuesAfterTheReservation) {
  uint32_t last = 0;
  for (int i = 0; i < 5; ++i) last = Uid();
  ASSERT_EQ(last, 5u);
  EXPECT_EQ(UidNext(), 6u);
  const uint64_t old_epoch = Epoch();
  Restamp();
  ASSERT_NE(Epoch(), old_epoch);
  // Callers still on the old assignment are turned away.
  EXPECT_EQ(
      Run(manager_->Folders(kUser, FolderOp::Allocate("INBOX", 1), old_epoch)).status().code(),
      Code::kAborted);
  // The rest of the old block is skipped: the next UID is past every one
  // the previous assignment may have handed out.
  EXPECT_EQ(UidNext(), kUidBlock + 1);
  const size_t writes = writer_.writes();
  const uint32_t next = Uid();
  EXPECT_GT(next, last);
  EXPECT_EQ(next, kUidBlock + 1);
  EXPECT_EQ(writer_.writes(), writes + 1) << "a new block is reserved before use";
  EXPECT_EQ(Uid(), kUidBlock + 2);
  EXPECT_EQ(UidNext(), kUidBlock + 3);
  EXPECT_EQ(Uid("Sent"), 1u) << "a folder with nothing reserved starts at 1";
}

TEST_F(LocalManagerFoldersUidTest, WhileTheBucketIsRebuiltNoUidsAreHandedOut) {
  ASSERT_EQ(Uid(), 1u);
  view_ = NextView(view_, cluster::MakeEpoch(2, kSelf), BucketOfUser(kUser), kSelf, {kSelf});
  manager_->InstallView(view_);
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 1)).status().code(), Code::kUnavailable);
  EXPECT_EQ(Read().status().code(), Code::kUnavailable);
  Rebuild(*manager_, view_, {writer_.Last(kUser)});
  EXPECT_EQ(Uid(), kUidBlock + 1);
}

TEST_F(LocalManagerFoldersUidTest, ANewManagerContinuesAfterTheReservation) {
  std::set<uint32_t> handed_out;
  for (uint32_t i = 0; i < kUidBlock + 7; ++i) handed_out.insert(Uid());  // two blocks
  handed_out.insert(Uid("Sent"));
  ASSERT_EQ(*handed_out.rbegin(), kUidBlock + 7);
  // The node's manager restarts (same view): the new one learns the profile
  // from the replicas, as reconstruction delivers it.
  manager_ = MakeManager(kSelf);
  manager_->InstallView(view_);
  manager_->OfferProfile(writer_.Last(kUser));
  Rebuild(*manager_, view_);
  ASSERT_TRUE(manager_->Ready());
  EXPECT_EQ(UidNext(), 2 * kUidBlock + 1);
  EXPECT_EQ(UidNext("Sent"), kUidBlock + 1);
  for (int i = 0; i < 5; ++i) {
    const uint32_t uid = Uid();
    EXPECT_GT(uid, *handed_out.rbegin());
    EXPECT_TRUE(handed_out.insert(uid).second) << uid;
  }
  EXPECT_EQ(Uid("Sent"), kUidBlock + 1);
}

TEST_F(LocalManagerFoldersUidTest, ABucketThatMovesAwayAndBackContinuesAfterBoth) {
  const uint32_t bucket = BucketOfUser(kUser);
  std::vector<uint32_t> uids;
  for (int i = 0; i < 5; ++i) uids.push_back(Uid());

  // The bucket moves to kOther, which learns the profile from its replica.
  const View v1 = view_;
  view_ = NextView(v1, cluster::MakeEpoch(2, kSelf), bucket, kOther, {kSelf, kOther});
  manager_->InstallView(view_);
  Rebuild(*manager_, view_);
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 1)).status().code(), Code::kAborted)
      << "the old manager hands out nothing under the new assignment";
  std::unique_ptr<LocalManager> other = MakeManager(kOther);
  other->InstallView(view_);
  other->OfferProfile(writer_.Last(kUser));
  Rebuild(*other, view_);
  for (int i = 0; i < 3; ++i) {
    Result<FolderState> r = Allocate(*other, "INBOX", 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    uids.push_back(r->first_uid);
  }
  EXPECT_TRUE(Increasing(uids)) << testing::PrintToString(uids);

  // And back: kSelf still holds the rest of its first block, which it must
  // not use — kOther has handed out UIDs above it.
  view_ = NextView(view_, cluster::MakeEpoch(3, kSelf), bucket, kSelf, {kSelf, kOther});
  manager_->InstallView(view_);
  manager_->OfferProfile(writer_.Last(kUser));
  Rebuild(*manager_, view_);
  EXPECT_GT(UidNext(), uids.back());
  for (int i = 0; i < 3; ++i) uids.push_back(Uid());
  EXPECT_TRUE(Increasing(uids)) << testing::PrintToString(uids);
  EXPECT_EQ(uids[8], 2 * kUidBlock + 1);
}

TEST_F(LocalManagerFoldersUidTest, ARecreatedUserReservesBeforeUse) {
  for (int i = 0; i < 5; ++i) ASSERT_GT(Uid(), 0u);
  ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kDelete, kUser, "", Epoch())).ok());
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 1)).status().code(), Code::kNotFound);
  ASSERT_TRUE(Run(manager_->ManageUser(UserOpKind::kCreate, kUser, "hash", Epoch())).ok());
  // The new incarnation's profile reserves nothing yet: its first UIDs need
  // a reservation (Allocate checks), or a later manager would hand them out
  // again.
  std::vector<uint32_t> uids;
  for (int i = 0; i < 3; ++i) uids.push_back(Uid());
  Restamp();
  uids.push_back(Uid());
  EXPECT_TRUE(Increasing(uids)) << testing::PrintToString(uids);
}

TEST_F(LocalManagerFoldersUidTest, ExhaustedUids) {
  store::Profile p = writer_.Last(kUser);
  for (store::Folder& f : *p.mutable_folders()) {
    if (f.name() == "INBOX") f.set_uid_reserved(0xFFFFFFFFu - kUidBlock);
  }
  p.set_hlc(p.hlc() + 1);
  manager_ = MakeManager(kSelf);
  manager_->InstallView(view_);
  manager_->OfferProfile(p);
  Rebuild(*manager_, view_);
  const size_t writes = writer_.writes();
  EXPECT_EQ(Op(FolderOp::Allocate("INBOX", 1)).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(writer_.writes(), writes);
  EXPECT_EQ(Uid("Sent"), 1u) << "other folders go on";
}

// RFC 3501 §2.3.1.1: a mailbox deleted and created again under the same name
// must get a new UIDVALIDITY, since its UIDs start over — also within the
// second the clock-derived value would repeat in.
TEST_F(LocalManagerFoldersUidTest, ARecreatedFolderGetsANewUidValidity) {
  ASSERT_TRUE(Create("Projects").ok());
  const uint32_t old_validity = FolderIn(*Read(), "Projects")->folder.uidvalidity();
  ASSERT_EQ(Uid("Projects"), 1u);
  ASSERT_TRUE(Delete("Projects").ok());
  ASSERT_TRUE(Create("Projects").ok());
  Result<FolderState> st = Read();
  ASSERT_TRUE(st.ok());
  const FolderStatus* again = FolderIn(*st, "Projects");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->uidnext, 1u);
  EXPECT_GT(again->folder.uidvalidity(), old_validity);
  // A rename away and a new folder under the old name: the same.
  ASSERT_TRUE(Rename("Projects", "Old").ok());
  ASSERT_TRUE(Create("Projects").ok());
  EXPECT_GT(FolderIn(*Read(), "Projects")->folder.uidvalidity(), again->folder.uidvalidity());
  EXPECT_EQ(FolderIn(*Read(), "Old")->folder.uidvalidity(), again->folder.uidvalidity());
  // And a manager restart keeps the high-water mark (it is in the profile).
  const uint32_t newest = FolderIn(*Read(), "Projects")->folder.uidvalidity();
  ASSERT_TRUE(Delete("Projects").ok());
  manager_ = MakeManager(kSelf);
  manager_->InstallView(view_);
  manager_->OfferProfile(writer_.Last(kUser));
  Rebuild(*manager_, view_);
  ASSERT_TRUE(Create("Projects").ok());
  EXPECT_GT(FolderIn(*Read(), "Projects")->folder.uidvalidity(), newest);
}

}  // namespace
}  // namespace porcupine::manager
