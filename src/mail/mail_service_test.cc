// The delivery and retrieval flows on a one-node cluster with a real store:
// the production manager, router and fragments, with a fixed view.
#include "mail/mail_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/async.h"
#include "core/hash.h"
#include "core/password.h"
#include "mail/postmaster.h"
#include "manager/local_manager.h"
#include "manager/rebuild.h"

namespace porcupine::mail {
namespace {

constexpr NodeId kSelf = 7;
constexpr uint32_t kBuckets = 16;

// This node alone, in a view installed once.
class OneNode : public manager::ManagerDirectory, public NodeDirectory, public manager::ViewSource {
 public:
  OneNode() {
    cluster::View v;
    v.epoch = cluster::MakeEpoch(1, kSelf);
    v.members = {{kSelf, 1, "127.0.0.1:1", "n1"}};
    v.user_map = cluster::UserMap(kBuckets, kSelf, v.epoch);
    v.joined = {kSelf};
    view_ = std::make_shared<const cluster::View>(v);
  }
  void Set(manager::UserManager* m, FragmentStore* f) {
    m_ = m;
    f_ = f;
  }
  // A second member with fragments `f` and no buckets to manage. REQUIRES:
  // peer > kSelf (members are sorted), before the manager installs the view.
  void AddPeer(NodeId peer, FragmentStore* f) {
    cluster::View v = *view_;
    v.members.push_back({peer, 1, "127.0.0.1:2", "n2"});
    v.joined.push_back(peer);
    view_ = std::make_shared<const cluster::View>(v);
    peer_ = peer;
    peer_f_ = f;
  }
  manager::UserManager* ManagerOn(NodeId n) override { return n == kSelf ? m_ : nullptr; }
  NodeId self() const override { return kSelf; }
  FragmentStore* FragmentsOn(NodeId n) override {
    if (n == kSelf) return f_;
    return n == peer_ ? peer_f_ : nullptr;
  }
  uint64_t LoadOf(NodeId) override { return 0; }
  std::shared_ptr<const cluster::View> Current() const override { return view_; }
  asio::awaitable<void> WaitNewer(cluster::Epoch, std::chrono::milliseconds) override { co_return; }

 private:
  std::shared_ptr<const cluster::View> view_;
  manager::UserManager* m_ = nullptr;
  FragmentStore* f_ = nullptr;
  NodeId peer_ = 0;
  FragmentStore* peer_f_ = nullptr;
};

class StoreWriter : public manager::ProfileWriter {
 public:
  explicit StoreWriter(store::Store& s) : s_(s) {}
  asio::awaitable<Status> Write(store::Profile p) override {
    store::Batch b;
    b.PutProfile(BucketOf(p.user(), kBuckets), p);
    co_return s_.Commit(std::move(b));
  }

 private:
  store::Store& s_;
};

MailServiceOptions OneDomain() {
  MailServiceOptions o;
  o.domains = {"example.test"};
  return o;
}

class MailServiceTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/porcupine-mail-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }

  // Opens the store and rebuilds the soft state from it, as a restarted node.
  void Open() {
    store::Options so;
    so.data_dir = dir_;
    store::NodeMeta init;
    init.set_node_id(kSelf);
    init.set_buckets(kBuckets);
    auto s = store::Store::Open(so, init);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    writer_ = std::make_unique<StoreWriter>(*store_);
    manager::LocalManagerOptions mo;
    mo.self = kSelf;
    mo.buckets = kBuckets;
    mo.uid_settle_window = kSettle;
    mo.clock = [this] { return now_; };
    manager_ = std::make_unique<manager::LocalManager>(mo, *writer_, hlc_);
    const cluster::View& view = *node_.Current();
    manager_->InstallView(view);
    std::vector<uint32_t> all = manager::BucketsToAnnounce({}, view, kSelf);
    auto scanned = manager::ScanAnnouncements(*store_, view, all, hlc_.Now());
    ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
    for (auto& [to, chunks] : manager::MakeChunks(view, std::move(*scanned), 100)) {
      for (const manager::RebuildChunk& c : chunks) manager_->ApplyRebuild(to, c);
    }
    for (const cluster::Member& m : view.members) {
      if (m.id == kSelf) continue;  // a peer (AddPeer) holds nothing yet
      manager::AnnouncementBuilder nothing(view, all, hlc_.Now());
      for (auto& [to, chunks] : manager::MakeChunks(view, nothing.Take(), 100)) {
        for (const manager::RebuildChunk& c : chunks) manager_->ApplyRebuild(m.id, c);
      }
    }
    ASSERT_TRUE(manager_->Ready());
    router_ = std::make_unique<manager::ManagerRouter>(manager::RouterOptions{}, node_, node_);
    fragments_ =
        std::make_unique<LocalFragments>(FragmentOptions{}, *store_, hlc_, kSelf, *router_, node_);
    node_.Set(manager_.get(), fragments_.get());
    mail_ = std::make_unique<MailService>(options_, *router_, node_, node_, credentials_, *logins_,
                                          hlc_);
  }
  // The login throttle the tests use unless they say otherwise: out of the way.
  static LoginThrottleOptions Lenient() {
    LoginThrottleOptions t;
    t.failures_before_delay = 1000;
    t.failures_before_lockout = 1001;
    return t;
  }
  static manager::CredentialsOptions CredentialOptions() {
    manager::CredentialsOptions c;
    c.cache_entries = 100;
    c.dummy_hash = *DummyPasswordHash({1, 8});
    return c;
  }
  // Rebuilds the service with another login throttle.
  void UseThrottle(const LoginThrottleOptions& t) {
    Close();
    logins_ = std::make_unique<LoginGate>(t, SteadyNowMs);
    Open();
  }
  void Close() {
    mail_.reset();
    fragments_.reset();
    router_.reset();
    manager_.reset();
    writer_.reset();
    store_.reset();
  }

  static constexpr std::chrono::milliseconds kSettle{5000};
  // The managers' settle-window clock; time passes only when a test moves it.
  std::chrono::steady_clock::time_point now_{};

  template <typename T>
  T Run(asio::awaitable<T> op) {
    auto f = asio::co_spawn(io_, std::move(op), asio::use_future);
    io_.restart();
    // The store completes on its own thread; keep the loop waiting for it.
    auto guard = asio::make_work_guard(io_);
    while (f.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      io_.run_one_for(std::chrono::milliseconds(10));  // use_future may complete elsewhere
    }
    return f.get();
  }

  Status Manage(manager::UserOpKind kind, const std::string& user, const std::string& password) {
    std::string hash;
    if (!password.empty()) hash = *HashPassword(password, {1, 8});
    return Run(router_->ManageUser(kind, user, hash));
  }
  Status Create(const std::string& user, const std::string& password) {
    return Manage(manager::UserOpKind::kCreate, user, password);
  }
  std::vector<std::string> Users() { return *Run(router_->ListUsers()); }

  std::string dir_;
  MailServiceOptions options_ = OneDomain();  // read by Open()
  asio::io_context io_;
  asio::thread_pool pool_{1};
  Hlc hlc_{SystemNowMs};
  OneNode node_;
  manager::Credentials credentials_{pool_.get_executor(), CredentialOptions(), SteadyNowMs};
  std::unique_ptr<LoginGate> logins_ = std::make_unique<LoginGate>(Lenient(), SteadyNowMs);
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<manager::LocalManager> manager_;
  std::unique_ptr<manager::ManagerRouter> router_;
  std::unique_ptr<LocalFragments> fragments_;
  std::unique_ptr<MailService> mail_;
};

TEST_F(MailServiceTest, ClassifiesRecipients) {
  ASSERT_TRUE(Create("alice@example.test", "pw").ok());
  EXPECT_EQ(Run(mail_->CheckRecipient("Alice@Example.Test")), RecipientCheck::kLocalUser);
  EXPECT_EQ(Run(mail_->CheckRecipient("bob@example.test")), RecipientCheck::kUnknownUser);
  EXPECT_EQ(Run(mail_->CheckRecipient("alice@elsewhere.test")), RecipientCheck::kNotLocalDomain);
  EXPECT_EQ(Run(mail_->CheckRecipient("bad address@example.test")), RecipientCheck::kBadAddress);
  // A bare local part (RFC 5321 "postmaster") means the first local domain.
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster")), RecipientCheck::kUnknownUser);
  ASSERT_TRUE(Create("postmaster@example.test", "pw").ok());
  EXPECT_EQ(Run(mail_->CheckRecipient("Postmaster")), RecipientCheck::kLocalUser);
}

TEST_F(MailServiceTest, DeliverListReadDeleteSurvivesReopen) {
  ASSERT_TRUE(Create("alice@example.test", "pw").ok());
  ASSERT_TRUE(Create("bob@example.test", "pw2").ok());
  ASSERT_TRUE(Run(mail_->Deliver({"alice@example.test", "bob@example.test"}, "one\r\n")).ok());
  ASSERT_TRUE(Run(mail_->Deliver({"alice@example.test"}, "two\r\n")).ok());
  EXPECT_EQ(mail_->stats().messages_stored, 3u);

  std::string user;
  auto box = Run(mail_->OpenMailbox("alice@example.test", "pw", &user));
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(user, "alice@example.test");
  ASSERT_EQ(box->size(), 2u);
  EXPECT_LT((*box)[0].id, (*box)[1].id);
  EXPECT_EQ((*box)[0].holders, std::vector<NodeId>{kSelf});
  EXPECT_EQ(*Run(mail_->ReadMessage(user, (*box)[0])), "one\r\n");
  EXPECT_EQ(*Run(mail_->ReadMessage(user, (*box)[1])), "two\r\n");
  EXPECT_EQ(Run(mail_->OpenMailbox("alice", "wrong", &user)).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Run(mail_->OpenMailbox("nobody", "pw", &user)).status().code(),
            Code::kPermissionDenied);

  ASSERT_TRUE(Run(mail_->DeleteMessages("alice@example.test", {(*box)[0]})).ok());
  Close();
  Open();  // soft state is rebuilt from the store
  auto again = Run(mail_->OpenMailbox("alice", "pw", &user));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, (*box)[1].id);
  EXPECT_EQ(Run(mail_->ReadMessage(user, (*box)[0])).status().code(), Code::kNotFound);
  auto bobs = Run(mail_->OpenMailbox("bob@example.test", "pw2", &user));
  ASSERT_TRUE(bobs.ok());
  EXPECT_EQ(bobs->size(), 1u);
}

TEST_F(MailServiceTest, UserAdministration) {
  ASSERT_TRUE(Create("carol@example.test", "a").ok());
  EXPECT_EQ(Create("carol@example.test", "b").code(), Code::kAlreadyExists);
  ASSERT_TRUE(Run(mail_->Deliver({"carol@example.test"}, "x\r\n")).ok());
  ASSERT_TRUE(Manage(manager::UserOpKind::kSetPassword, "carol@example.test", "new").ok());
  std::string user;
  EXPECT_FALSE(Run(mail_->OpenMailbox("carol", "a", &user)).ok());
  EXPECT_TRUE(Run(mail_->OpenMailbox("carol", "new", &user)).ok());
  EXPECT_EQ(Users(), std::vector<std::string>{"carol@example.test"});
  ASSERT_TRUE(Run(mail_->DeleteAllMail("carol@example.test")).ok());
  ASSERT_TRUE(Manage(manager::UserOpKind::kDelete, "carol@example.test", "").ok());
  EXPECT_EQ(Manage(manager::UserOpKind::kDelete, "carol@example.test", "").code(), Code::kNotFound);
  Close();
  Open();
  EXPECT_TRUE(Users().empty());
  EXPECT_EQ(Run(mail_->CheckRecipient("carol@example.test")), RecipientCheck::kUnknownUser);
  // Re-creating a deleted user starts with an empty mailbox.
  ASSERT_TRUE(Create("carol@example.test", "z").ok());
  auto box = Run(mail_->OpenMailbox("carol", "z", &user));
  ASSERT_TRUE(box.ok());
  EXPECT_TRUE(box->empty());
}

// Unknown users cost what existing ones cost (a dummy argon2id run) and are
// throttled the same way: no oracle for which accounts exist.
TEST_F(MailServiceTest, UnknownUsersAreCheckedAgainstTheDummyHash) {
  ASSERT_TRUE(Create("alice@example.test", "pw").ok());
  std::string user;
  const uint64_t before = credentials_.stats().verifications;
  EXPECT_EQ(Run(mail_->OpenMailbox("alice", "wrong", &user)).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(credentials_.stats().verifications, before + 1);
  EXPECT_EQ(Run(mail_->OpenMailbox("nobody", "pw", &user)).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Run(mail_->Authenticate("someone@elsewhere.test", "pw")).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(credentials_.stats().verifications, before + 3);
}

TEST_F(MailServiceTest, FailedLoginsAreDelayedThenRefused) {
  LoginThrottleOptions t;
  t.failures_before_delay = 2;
  t.delay_initial = std::chrono::milliseconds(40);
  t.delay_max = std::chrono::milliseconds(80);
  t.failures_before_lockout = 4;
  t.lockout = std::chrono::seconds(600);
  UseThrottle(t);
  ASSERT_TRUE(Create("alice@example.test", "pw").ok());
  ASSERT_TRUE(Create("bob@example.test", "pw2").ok());
  ASSERT_TRUE(Create("carol@example.test", "pw3").ok());
  // bob logs in from .3 before the attack: that pair is trusted.
  ASSERT_TRUE(Run(mail_->Authenticate("bob", "pw2", "10.0.0.3")).ok());
  auto timed = [&](const char* login, const char* password, const char* client) {
    const auto start = std::chrono::steady_clock::now();
    Code c = Run(mail_->Authenticate(login, password, client)).status().code();
    return std::make_pair(c, std::chrono::steady_clock::now() - start);
  };
  std::vector<std::chrono::nanoseconds> waits;
  for (int i = 0; i < 4; ++i) {
    auto [code, took] = timed("bob", "wrong", "10.0.0.1");
    EXPECT_EQ(code, Code::kPermissionDenied) << i;
    waits.push_back(took);
  }
  EXPECT_GE(waits[2], std::chrono::milliseconds(40));
  EXPECT_GE(waits[3], std::chrono::milliseconds(80));
  // Locked: refused unchecked, the right password too, from that address ...
  const uint64_t checks = credentials_.stats().verifications;
  EXPECT_EQ(timed("bob", "pw2", "10.0.0.1").first, Code::kResourceExhausted);
  EXPECT_EQ(timed("alice", "pw", "10.0.0.1").first, Code::kResourceExhausted);
  // ... and for that account from a new address,
  EXPECT_EQ(timed("bob", "pw2", "10.0.0.2").first, Code::kResourceExhausted);
  EXPECT_EQ(credentials_.stats().verifications, checks);
  // but not for its trusted pair, nor for others elsewhere.
  EXPECT_TRUE(Run(mail_->Authenticate("bob", "pw2", "10.0.0.3")).ok());
  EXPECT_TRUE(Run(mail_->Authenticate("carol", "pw3", "10.0.0.2")).ok());
  LoginGate::Stats st = logins_->stats();
  EXPECT_EQ(st.failures, 4u);
  EXPECT_EQ(st.delayed, 2u);
  EXPECT_EQ(st.refused_address, 2u);
  EXPECT_EQ(st.refused_account, 1u);
  // An unknown account locks like an existing one (from many addresses).
  for (const char* who : {"carol", "nobody"}) {
    for (int i = 0; i < 4; ++i) {
      const std::string client = "10.1.0." + std::to_string(i);
      EXPECT_EQ(Run(mail_->Authenticate(who, "wrong", client)).status().code(),
                Code::kPermissionDenied);
    }
    EXPECT_EQ(Run(mail_->Authenticate(who, "x", "10.2.0.1")).status().code(),
              Code::kResourceExhausted)
        << who;
  }
}

// ---- IMAP: folders, UIDs, flags -------------------------------------------------

class MailServiceImapTest : public MailServiceTest {
 protected:
  static constexpr char kAlice[] = "alice@example.test";

  void SetUp() override {
    MailServiceTest::SetUp();
    ASSERT_TRUE(Create(kAlice, "pw").ok());
  }

  Result<FolderView> OpenFolder(const std::string& folder, const std::string& user = kAlice) {
    return Run(mail_->OpenFolder(user, folder));
  }
  // A re-read with the caller's listing cache (an empty view on failure).
  FolderView OpenCached(const std::string& folder, ListingCache& cache) {
    Result<FolderView> v = Run(mail_->OpenFolder(kAlice, folder, false, &cache));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : FolderView{};
  }
  // The open folder's messages. REQUIRES: the folder exists.
  std::vector<MailboxEntry> Messages(const std::string& folder) {
    Result<FolderView> view = OpenFolder(folder);
    EXPECT_TRUE(view.ok()) << folder << ": " << view.status().ToString();
    return view.ok() ? view->messages : std::vector<MailboxEntry>{};
  }
  std::vector<uint32_t> UidsIn(const std::string& folder) {
    std::vector<uint32_t> out;
    for (const MailboxEntry& e : Messages(folder)) out.push_back(e.uid);
    return out;
  }
  Result<Placed> Append(const std::string& folder, std::vector<std::string> flags, int64_t date_ms,
                        const std::string& body) {
    return Run(mail_->Append(kAlice, folder, std::move(flags), {date_ms, 0}, body));
  }
  Result<manager::FolderState> Folders(manager::FolderOp op, const std::string& user = kAlice) {
    return Run(mail_->Folders(user, std::move(op)));
  }
  // The manager's view of one folder. REQUIRES: it exists.
  manager::FolderStatus Folder(const std::string& name) {
    Result<manager::FolderState> st = Folders({});
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    if (st.ok()) {
      for (const manager::FolderStatus& f : st->folders) {
        if (f.folder.name() == name) return f;
      }
    }
    ADD_FAILURE() << "no folder " << name;
    return {};
  }
  std::string Body(const MailboxEntry& e) {
    Result<std::string> body = Run(mail_->ReadMessage(kAlice, e));
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return body.ok() ? *body : "";
  }
  std::vector<std::string> Bodies(const std::vector<MailboxEntry>& entries) {
    std::vector<std::string> out;
    for (const MailboxEntry& e : entries) out.push_back(Body(e));
    return out;
  }
  Status Deliver(const std::vector<std::string>& to, const std::string& body) {
    return Run(mail_->Deliver(to, body));
  }
};

using Flags = std::vector<std::string>;
constexpr FlagChange::Mode kReplace = FlagChange::Mode::kReplace;
constexpr FlagChange::Mode kAdd = FlagChange::Mode::kAdd;
constexpr FlagChange::Mode kRemove = FlagChange::Mode::kRemove;
using Uids = std::vector<uint32_t>;
using Strings = std::vector<std::string>;

TEST_F(MailServiceImapTest, DeliverAssignsInboxUidsInOrder) {
  ASSERT_TRUE(Create("bob@example.test", "pw2").ok());
  ASSERT_TRUE(Deliver({kAlice}, "m1\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice, "bob@example.test"}, "m2\r\n").ok());
  ASSERT_TRUE(Deliver({"Alice@Example.Test"}, "m3\r\n").ok());
  Result<FolderView> inbox = OpenFolder("INBOX");
  ASSERT_TRUE(inbox.ok()) << inbox.status().ToString();
  ASSERT_EQ(inbox->messages.size(), 3u);
  EXPECT_EQ(UidsIn("INBOX"), (Uids{1, 2, 3}));
  EXPECT_EQ(Bodies(inbox->messages), (Strings{"m1\r\n", "m2\r\n", "m3\r\n"}));
  const int64_t now_ms = SystemNowMs();
  for (const MailboxEntry& e : inbox->messages) {
    EXPECT_EQ(e.folder, store::kInboxFolder);
    EXPECT_TRUE(e.flags.empty());
    EXPECT_GT(e.internal_date_ms, now_ms - 60'000);
    EXPECT_LE(e.internal_date_ms, now_ms);
    EXPECT_EQ(e.holders, std::vector<NodeId>{kSelf});
  }
  EXPECT_EQ(inbox->status.folder.name(), "INBOX");
  EXPECT_EQ(inbox->status.folder.id(), store::kInboxFolder);
  EXPECT_EQ(inbox->status.uidnext, 4u);
  EXPECT_NE(inbox->status.folder.uidvalidity(), 0u);
  EXPECT_EQ(inbox->status.folder.uidvalidity(), Folder("INBOX").folder.uidvalidity());
  // Each user has a sequence of its own.
  Result<FolderView> bobs = OpenFolder("INBOX", "bob@example.test");
  ASSERT_TRUE(bobs.ok());
  ASSERT_EQ(bobs->messages.size(), 1u);
  EXPECT_EQ(bobs->messages[0].uid, 1u);
  EXPECT_EQ(bobs->status.uidnext, 2u);
}

TEST_F(MailServiceImapTest, OpenFolderOfEmptyAndMissingFolders) {
  Result<FolderView> sent = OpenFolder("Sent");
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_TRUE(sent->messages.empty());
  EXPECT_EQ(sent->status.uidnext, 1u);
  EXPECT_EQ(sent->status.folder.special_use(), "\\Sent");
  EXPECT_EQ(OpenFolder("Nope").status().code(), Code::kNotFound);
  EXPECT_EQ(OpenFolder("sent").status().code(), Code::kNotFound) << "names are case-sensitive";
  EXPECT_EQ(OpenFolder("INBOX", "nobody@example.test").status().code(), Code::kNotFound);
}

TEST_F(MailServiceImapTest, TheInboxOpensByAnyCase) {
  ASSERT_TRUE(Deliver({kAlice}, "m1\r\n").ok());
  ASSERT_TRUE(Folders({manager::FolderOp::Kind::kCreate, "INBOX/Lists"}).ok());
  Result<Placed> placed = Append("inbox/Lists", {}, 0, "l1\r\n");  // the manager takes any case
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  for (const char* name : {"INBOX", "inbox", "Inbox"}) {
    SCOPED_TRACE(name);
    Result<FolderView> view = OpenFolder(name);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->status.folder.id(), store::kInboxFolder);
    EXPECT_EQ(view->messages.size(), 1u);
  }
  Result<FolderView> lists = OpenFolder("inbox/Lists");
  ASSERT_TRUE(lists.ok()) << lists.status().ToString();
  EXPECT_EQ(lists->status.folder.name(), "INBOX/Lists");
  EXPECT_EQ(lists->messages.size(), 1u);
}

TEST_F(MailServiceImapTest, AppendStoresInTheNamedFolder) {
  const int64_t date = 1'600'000'000'000;
  Result<Placed> first = Append("Sent", {"\\Seen"}, date, "s1\r\n");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const manager::FolderStatus sent = Folder("Sent");
  EXPECT_EQ(first->uidvalidity, sent.folder.uidvalidity());
  EXPECT_EQ(first->uids, Uids{1});
  Result<Placed> second = Append("Sent", {"\\Seen", "\\Answered"}, date + 1000, "s2\r\n");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->uids, Uids{2});

  Result<FolderView> view = OpenFolder("Sent");
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->messages.size(), 2u);
  EXPECT_EQ(view->status.uidnext, 3u);
  const MailboxEntry& a = view->messages[0];
  const MailboxEntry& b = view->messages[1];
  EXPECT_EQ(a.uid, 1u);
  EXPECT_EQ(a.folder, sent.folder.id());
  EXPECT_EQ(a.flags, Flags{"\\Seen"});
  EXPECT_EQ(a.internal_date_ms, date);
  EXPECT_EQ(a.size, 4u);
  EXPECT_EQ(b.uid, 2u);
  EXPECT_EQ(b.flags, (Flags{"\\Seen", "\\Answered"}));
  EXPECT_EQ(b.internal_date_ms, date + 1000);
  EXPECT_EQ(Bodies(view->messages), (Strings{"s1\r\n", "s2\r\n"}));
  EXPECT_TRUE(Messages("INBOX").empty()) << "nothing in the inbox";

  // No date: now.
  const int64_t before = SystemNowMs();
  ASSERT_TRUE(Append("Drafts", {}, 0, "d\r\n").ok());
  std::vector<MailboxEntry> drafts = Messages("Drafts");
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_GE(drafts[0].internal_date_ms, before);
  EXPECT_EQ(drafts[0].uid, 1u) << "each folder counts from 1";
}

TEST_F(MailServiceImapTest, AppendToAMissingFolderStoresNothing) {
  const uint64_t stored = mail_->stats().messages_stored;
  EXPECT_EQ(Append("Nope", {}, 0, "x\r\n").status().code(), Code::kNotFound);
  EXPECT_EQ(Run(mail_->Append("nobody@example.test", "INBOX", {}, {}, "x\r\n")).status().code(),
            Code::kNotFound);
  EXPECT_EQ(mail_->stats().messages_stored, stored);
}

TEST_F(MailServiceImapTest, CopyKeepsFlagsAndDatesUnderNewUids) {
  const int64_t d1 = 1'600'000'000'000, d2 = 1'600'000'100'000;
  ASSERT_TRUE(Append("Drafts", {"\\Draft"}, d1, "one\r\n").ok());
  ASSERT_TRUE(Append("Drafts", {"\\Seen", "$Label1"}, d2, "two\r\n").ok());
  ASSERT_TRUE(Folders({manager::FolderOp::Kind::kCreate, "Archive"}).ok());
  std::vector<MailboxEntry> drafts = Messages("Drafts");
  ASSERT_EQ(drafts.size(), 2u);

  Result<Placed> placed = Run(mail_->Copy(kAlice, drafts, "Archive", false));
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  const manager::FolderStatus archive = Folder("Archive");
  EXPECT_EQ(placed->uidvalidity, archive.folder.uidvalidity());
  EXPECT_EQ(placed->uids, (Uids{1, 2}));

  Result<FolderView> copies = OpenFolder("Archive");
  ASSERT_TRUE(copies.ok());
  ASSERT_EQ(copies->messages.size(), 2u);
  EXPECT_EQ(copies->status.uidnext, 3u);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const MailboxEntry& c = copies->messages[i];
    EXPECT_EQ(c.uid, i + 1);
    EXPECT_EQ(c.folder, archive.folder.id());
    EXPECT_EQ(c.flags, drafts[i].flags);
    EXPECT_EQ(c.internal_date_ms, drafts[i].internal_date_ms);
    EXPECT_EQ(c.size, drafts[i].size);
    EXPECT_NE(c.id, drafts[i].id) << "a copy is a message of its own";
  }
  EXPECT_EQ(Bodies(copies->messages), (Strings{"one\r\n", "two\r\n"}));
  // The originals stay.
  EXPECT_EQ(UidsIn("Drafts"), (Uids{1, 2}));
  EXPECT_EQ(Bodies(Messages("Drafts")), (Strings{"one\r\n", "two\r\n"}));
  // A second copy goes after the first, in the given order.
  Result<Placed> again = Run(mail_->Copy(kAlice, {drafts[1], drafts[0]}, "Archive", false));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->uids, (Uids{3, 4}));
  std::vector<MailboxEntry> all = Messages("Archive");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(Body(all[2]), "two\r\n");
  EXPECT_EQ(Body(all[3]), "one\r\n");
  EXPECT_EQ(all[2].flags, (Flags{"\\Seen", "$Label1"}));
}

TEST_F(MailServiceImapTest, AnAppendedDateKeepsItsZoneThroughCopyAndMove) {
  const int64_t date = 1'767'254'400'000;  // 01-Jan-2026 10:00:00 +0200
  ASSERT_TRUE(Run(mail_->Append(kAlice, "Drafts", {}, {date, 120}, "z\r\n")).ok());
  ASSERT_TRUE(Deliver({kAlice}, "delivered\r\n").ok());
  std::vector<MailboxEntry> drafts = Messages("Drafts");
  ASSERT_EQ(drafts.size(), 1u);
  EXPECT_EQ(drafts[0].internal_date_ms, date);
  EXPECT_EQ(drafts[0].internal_date_zone, 120);
  EXPECT_EQ(Messages("INBOX").at(0).internal_date_zone, 0) << "a delivery is dated in UTC";
  ASSERT_TRUE(Run(mail_->Copy(kAlice, drafts, "Trash", false)).ok());
  ASSERT_TRUE(Run(mail_->Copy(kAlice, drafts, "Junk", true)).ok());
  for (const char* folder : {"Trash", "Junk"}) {
    std::vector<MailboxEntry> copies = Messages(folder);
    ASSERT_EQ(copies.size(), 1u) << folder;
    EXPECT_EQ(copies[0].internal_date_ms, date) << folder;
    EXPECT_EQ(copies[0].internal_date_zone, 120) << folder;
  }
}

TEST_F(MailServiceImapTest, MoveTakesTheOriginalsAway) {
  ASSERT_TRUE(Append("Trash", {}, 0, "old\r\n").ok());  // Trash uid 1
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "c\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 3u);
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, {inbox[0]}, kAdd, {"\\Seen"})).ok());
  inbox = Messages("INBOX");  // as the session knows them after the STORE
  ASSERT_EQ(inbox[0].flags, Flags{"\\Seen"});

  Result<Placed> moved = Run(mail_->Copy(kAlice, {inbox[0], inbox[1]}, "Trash", true));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->uids, (Uids{2, 3}));
  EXPECT_EQ(moved->uidvalidity, Folder("Trash").folder.uidvalidity());
  EXPECT_EQ(UidsIn("INBOX"), Uids{3}) << "the originals are gone";
  EXPECT_EQ(Bodies(Messages("INBOX")), Strings{"c\r\n"});
  std::vector<MailboxEntry> trash = Messages("Trash");
  ASSERT_EQ(trash.size(), 3u);
  EXPECT_EQ(Bodies(trash), (Strings{"old\r\n", "a\r\n", "b\r\n"}));
  EXPECT_EQ(trash[1].flags, Flags{"\\Seen"});
  EXPECT_EQ(trash[1].internal_date_ms, inbox[0].internal_date_ms);
  EXPECT_TRUE(trash[2].flags.empty());
  EXPECT_EQ(Run(mail_->ReadMessage(kAlice, inbox[0])).status().code(), Code::kNotFound);
  // The inbox's UIDs are not reused.
  ASSERT_TRUE(Deliver({kAlice}, "d\r\n").ok());
  EXPECT_EQ(UidsIn("INBOX"), (Uids{3, 4}));
}

TEST_F(MailServiceImapTest, OfTwoRacingMovesOfOneMessageOneWins) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  const std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  std::vector<asio::awaitable<Result<Placed>>> moves;
  moves.push_back(mail_->Copy(kAlice, inbox, "Sent", true));
  moves.push_back(mail_->Copy(kAlice, inbox, "Trash", true));
  std::vector<Result<Placed>> done = Run(WhenAll(std::move(moves)));
  ASSERT_EQ(done.size(), 2u);
  EXPECT_NE(done[0].ok(), done[1].ok())
      << done[0].status().ToString() << " / " << done[1].status().ToString();
  for (const Result<Placed>& r : done) {
    if (r.ok()) {
      EXPECT_EQ(r->uids.size(), 2u);
    }
  }
  EXPECT_TRUE(Messages("INBOX").empty());
  std::vector<std::string> moved = Bodies(Messages("Sent"));
  std::vector<std::string> trash = Bodies(Messages("Trash"));
  moved.insert(moved.end(), trash.begin(), trash.end());
  std::sort(moved.begin(), moved.end());
  EXPECT_EQ(moved, (Strings{"a\r\n", "b\r\n"})) << "one copy of each, in one folder";
  // The loser's UIDs were released with its copies: they hold nothing back.
  for (const char* folder : {"Sent", "Trash"}) {
    ASSERT_TRUE(Append(folder, {}, 0, "new\r\n").ok());
    EXPECT_EQ(Bodies(Messages(folder)).back(), "new\r\n") << folder;
  }
}

TEST_F(MailServiceImapTest, CopyToAMissingFolderStoresNothing) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  const uint64_t stored = mail_->stats().messages_stored;
  for (bool move : {false, true}) {
    EXPECT_EQ(Run(mail_->Copy(kAlice, inbox, "Nope", move)).status().code(), Code::kNotFound);
  }
  EXPECT_EQ(mail_->stats().messages_stored, stored);
  EXPECT_EQ(UidsIn("INBOX"), Uids{1}) << "a failed move deletes nothing";
}

TEST_F(MailServiceImapTest, SetFlagsIsVisibleInTheNextOpen) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  ASSERT_TRUE(
      Run(mail_->SetFlags(kAlice, {inbox[0]}, kReplace, {"\\Seen", "\\Flagged", "$Work"})).ok());
  std::vector<MailboxEntry> after = Messages("INBOX");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].flags, (Flags{"\\Seen", "\\Flagged", "$Work"}));
  EXPECT_GT(after[0].hlc, inbox[0].hlc) << "a newer version of the metadata";
  EXPECT_TRUE(after[1].flags.empty()) << "only the named message";
  EXPECT_EQ(after[0].uid, 1u) << "the UID stays";
  EXPECT_EQ(after[0].id, inbox[0].id);
  EXPECT_EQ(Body(after[0]), "a\r\n") << "the body stays";

  // Adding to both messages in one call; adding what is there changes nothing.
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, after, kAdd, {"\\Deleted", "\\Seen"})).ok());
  std::vector<MailboxEntry> added = Messages("INBOX");
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0].flags, (Flags{"\\Seen", "\\Flagged", "$Work", "\\Deleted"}));
  EXPECT_EQ(added[1].flags, (Flags{"\\Deleted", "\\Seen"}));
  // Removing.
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, added, kRemove, {"\\Flagged", "\\Seen"})).ok());
  std::vector<MailboxEntry> removed = Messages("INBOX");
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].flags, (Flags{"$Work", "\\Deleted"}));
  EXPECT_EQ(removed[1].flags, Flags{"\\Deleted"});
  // Replacing with nothing clears.
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, {removed[0]}, kReplace, {})).ok());
  EXPECT_TRUE(Messages("INBOX")[0].flags.empty());

  // Durable: the restarted node lists the flags it stored.
  Close();
  Open();
  std::vector<MailboxEntry> reopened = Messages("INBOX");
  ASSERT_EQ(reopened.size(), 2u);
  EXPECT_TRUE(reopened[0].flags.empty());
  EXPECT_EQ(reopened[1].flags, Flags{"\\Deleted"});
  EXPECT_EQ(Run(mail_->SetFlags(kAlice, {}, kAdd, {"\\Seen"})).code(), Code::kOk);
}

TEST_F(MailServiceImapTest, ConcurrentFlagChangesOfOneMessageAreAllKept) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 1u);
  std::vector<asio::awaitable<Status>> changes;
  const Flags flags = {"\\Seen", "\\Answered", "\\Flagged", "$A", "$B", "$C"};
  for (const std::string& f : flags) changes.push_back(mail_->SetFlags(kAlice, inbox, kAdd, {f}));
  for (const Status& st : Run(WhenAll(std::move(changes)))) EXPECT_TRUE(st.ok()) << st.ToString();
  Flags got = Messages("INBOX").at(0).flags;
  std::sort(got.begin(), got.end());
  Flags want = flags;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want) << "no read-modify-write lost another's flag";
}

TEST_F(MailServiceImapTest, SetFlagsInAnotherFolder) {
  ASSERT_TRUE(Append("Sent", {"\\Seen"}, 0, "s\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  std::vector<MailboxEntry> sent = Messages("Sent");
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, sent, kAdd, {"\\Answered"})).ok());
  EXPECT_EQ(Messages("Sent")[0].flags, (Flags{"\\Seen", "\\Answered"}));
  EXPECT_TRUE(Messages("INBOX")[0].flags.empty());
  // A deleted message is left alone.
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, sent)).ok());
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, sent, kAdd, {"\\Flagged"})).ok());
  EXPECT_TRUE(Messages("Sent").empty());
}

TEST_F(MailServiceImapTest, DeleteMessagesInAnotherFolder) {
  for (const char* body : {"1\r\n", "2\r\n", "3\r\n"})
    ASSERT_TRUE(Append("Sent", {}, 0, body).ok());
  ASSERT_TRUE(Deliver({kAlice}, "inbox\r\n").ok());
  std::vector<MailboxEntry> sent = Messages("Sent");
  ASSERT_EQ(sent.size(), 3u);
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, {sent[1]})).ok());
  Result<FolderView> view = OpenFolder("Sent");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(UidsIn("Sent"), (Uids{1, 3}));
  EXPECT_EQ(view->status.uidnext, 4u) << "the highest UID is not handed out again";
  EXPECT_EQ(Bodies(view->messages), (Strings{"1\r\n", "3\r\n"}));
  EXPECT_EQ(Run(mail_->ReadMessage(kAlice, sent[1])).status().code(), Code::kNotFound);
  EXPECT_EQ(UidsIn("INBOX"), Uids{1}) << "the inbox is untouched";
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, {sent[2]})).ok());
  Result<Placed> next = Append("Sent", {}, 0, "4\r\n");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->uids, Uids{4}) << "UIDs are never reused";
  // Durable across a restart.
  Close();
  Open();
  EXPECT_EQ(UidsIn("Sent"), (Uids{1, 4}));
}

TEST_F(MailServiceImapTest, Pop3SeesTheInboxOnly) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Append("Sent", {}, 0, "s\r\n").ok());
  ASSERT_TRUE(Folders({manager::FolderOp::Kind::kCreate, "Archive"}).ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_TRUE(Run(mail_->Copy(kAlice, inbox, "Archive", false)).ok());
  std::string user;
  auto box = Run(mail_->OpenMailbox("alice", "pw", &user));
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  ASSERT_EQ(box->size(), 1u);
  EXPECT_EQ((*box)[0].id, inbox[0].id);
  EXPECT_EQ((*box)[0].folder, store::kInboxFolder);
  EXPECT_EQ(*Run(mail_->ReadMessage(user, (*box)[0])), "a\r\n");
  // Moving the inbox's message away empties the POP3 mailbox.
  ASSERT_TRUE(Run(mail_->Copy(kAlice, inbox, "Archive", true)).ok());
  box = Run(mail_->OpenMailbox("alice", "pw", &user));
  ASSERT_TRUE(box.ok());
  EXPECT_TRUE(box->empty());
}

TEST_F(MailServiceImapTest, UidsKeepGrowingAcrossARestart) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  ASSERT_TRUE(Append("Sent", {}, 0, "s\r\n").ok());
  Close();
  Open();  // a new manager, rebuilt from the store's profile
  ASSERT_TRUE(Deliver({kAlice}, "c\r\n").ok());
  Uids inbox = UidsIn("INBOX");
  ASSERT_EQ(inbox.size(), 3u);
  EXPECT_EQ(inbox[0], 1u);
  EXPECT_EQ(inbox[1], 2u);
  EXPECT_GT(inbox[2], 2u) << "a new manager never hands out an old UID";
  Result<FolderView> view = OpenFolder("INBOX");
  ASSERT_TRUE(view.ok());
  EXPECT_GT(view->status.uidnext, inbox[2]);
  EXPECT_EQ(Bodies(view->messages), (Strings{"a\r\n", "b\r\n", "c\r\n"}));
  Result<Placed> sent = Append("Sent", {}, 0, "t\r\n");
  ASSERT_TRUE(sent.ok());
  EXPECT_GT(sent->uids.at(0), 1u);
  EXPECT_EQ(sent->uidvalidity, Folder("Sent").folder.uidvalidity()) << "UIDVALIDITY stays";
}

// A message written straight into the store, as the other side of a
// partition would have left it: its own id, a UID of that side's manager.
store::MessageId PutForeign(store::Store& s, const std::string& user, uint32_t uid,
                            const std::string& body, uint64_t id_time) {
  store::MessageMeta m;
  m.set_version(1);
  const store::MessageId id{id_time, kSelf + 1, 1};
  m.set_id(id.ToBytes());
  m.set_folder(store::kInboxFolder);
  m.set_uid(uid);
  m.set_size(body.size());
  m.set_internal_date_ms(1);
  m.set_hlc(id_time);
  m.add_replicas(kSelf);
  store::Batch b;
  b.PutMessage(BucketOf(user, kBuckets), user, m, &body);
  EXPECT_TRUE(s.Commit(std::move(b)).ok());
  return id;
}

// ---- UIDs in flight hold newer messages back (FolderView::hold_from) ----

TEST_F(MailServiceImapTest, ANewerMessageWaitsForAnOlderUidStillOnItsWay) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  // A delivery took UID 2 and has not stored its message yet; a later one
  // with UID 3 is stored first.
  ASSERT_EQ(Folders(manager::FolderOp::Allocate("INBOX", 1))->first_uid, 2u);
  ASSERT_TRUE(Deliver({kAlice}, "c\r\n").ok());
  Result<FolderView> view = OpenFolder("INBOX");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->hold_from, 2u);
  EXPECT_EQ(Bodies(view->messages), Strings{"a\r\n"}) << "nothing above UID 2 shows yet";
  EXPECT_EQ(view->status.uidnext, 2u) << "UID 2:* will find both";
  // A session that already shows UID 3 keeps it.
  view = Run(mail_->OpenFolder(kAlice, "INBOX", false, nullptr,
                               [](const store::MessageId&) { return true; }));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->messages.size(), 2u);
  EXPECT_EQ(view->status.uidnext, 4u);
  // The late store lands: everything shows, in UID order.
  PutForeign(*store_, kAlice, 2, "b\r\n", hlc_.Now());
  view = OpenFolder("INBOX");
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->hold_from, 0u);
  EXPECT_EQ(Bodies(view->messages), (Strings{"a\r\n", "b\r\n", "c\r\n"}));
  EXPECT_EQ(view->status.uidnext, 4u);
}

// \Recent goes to the session that shows a message first: a claim made
// while a message is on its way leaves it to the read that shows it (an
// IMAP session sends its RECENT with the EXISTS), and one shown already is
// nobody else's.
TEST_F(MailServiceImapTest, AClaimTakesOnlyTheMessagesItShows) {
  auto claim = [&] {
    Result<FolderView> v = Run(mail_->OpenFolder(kAlice, "INBOX", /*claim_recent=*/true));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : FolderView{};
  };
  EXPECT_EQ(claim().status.recent_from, 1u) << "an empty folder: nothing claimed";
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  // Another delivery took UID 2 and has not stored its message yet.
  ASSERT_EQ(Folders(manager::FolderOp::Allocate("INBOX", 1))->first_uid, 2u);
  FolderView v = claim();
  ASSERT_EQ(v.messages.size(), 1u);
  EXPECT_EQ(v.status.recent_from, 1u) << "UID 1 is the caller's";
  PutForeign(*store_, kAlice, 2, "b\r\n", hlc_.Now());
  v = claim();
  ASSERT_EQ(v.messages.size(), 2u);
  EXPECT_EQ(v.status.recent_from, 2u) << "UID 2, on its way at the last claim, is the caller's now";
  v = claim();
  EXPECT_EQ(v.status.recent_from, 3u) << "claimed once";
  v = *OpenFolder("INBOX");
  EXPECT_EQ(v.status.recent_from, 3u) << "a read without a claim counts nothing as recent";
}

TEST_F(MailServiceImapTest, AUidWhoseStoreNeverCameHoldsBackForTheSettleWindowOnly) {
  ASSERT_EQ(Folders(manager::FolderOp::Allocate("INBOX", 1))->first_uid, 1u);  // never stored
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  ListingCache cache;
  auto open = [&] { return OpenCached("INBOX", cache); };
  FolderView v = open();
  EXPECT_TRUE(v.messages.empty());
  v = open();
  EXPECT_TRUE(v.unchanged);
  EXPECT_EQ(v.hold_from, 1u);
  EXPECT_EQ(v.status.uidnext, 1u) << "an unchanged re-read is held back the same";
  now_ += kSettle;
  v = open();
  EXPECT_FALSE(v.unchanged) << "the listing did not change, what it holds back did";
  EXPECT_EQ(v.hold_from, 0u);
  EXPECT_EQ(Bodies(v.messages), Strings{"b\r\n"});
  EXPECT_EQ(v.status.uidnext, 3u);
  EXPECT_TRUE(open().unchanged);
}

TEST_F(MailServiceImapTest, DeletingAYoungMessageReleasesItsUid) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, {inbox[0]})).ok());
  EXPECT_EQ(Bodies(Messages("INBOX")), Strings{"b\r\n"}) << "UID 1 is gone, not on its way";
  // A move's originals too.
  ASSERT_TRUE(Deliver({kAlice}, "c\r\n").ok());
  inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  ASSERT_TRUE(Run(mail_->Copy(kAlice, {inbox[0]}, "Trash", true)).ok());
  EXPECT_EQ(Bodies(Messages("INBOX")), Strings{"c\r\n"});
}

TEST_F(MailServiceImapTest, ACopyThatFailsHalfWayReleasesItsUids) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  std::vector<MailboxEntry> inbox = Messages("INBOX");
  ASSERT_EQ(inbox.size(), 2u);
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, {inbox[1]})).ok());
  EXPECT_EQ(Run(mail_->Copy(kAlice, inbox, "Trash", false)).status().code(), Code::kNotFound);
  EXPECT_TRUE(Messages("Trash").empty()) << "all or nothing";
  ASSERT_TRUE(Append("Trash", {}, 0, "t\r\n").ok());
  EXPECT_EQ(Bodies(Messages("Trash")), Strings{"t\r\n"}) << "UIDs 1 and 2 hold nothing back";
}

TEST_F(MailServiceImapTest, ACollidingUidGoesToTheHigherMessageId) {
  ASSERT_TRUE(Deliver({kAlice}, "ours 1\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "ours 2\r\n").ok());
  const std::vector<MailboxEntry> before = Messages("INBOX");
  ASSERT_EQ(before.size(), 2u);
  // The other side handed out UID 2 too: to a message with a higher id (a
  // later time) and to one with a lower id.
  const store::MessageId higher =
      PutForeign(*store_, kAlice, 2, "theirs high\r\n", hlc_.Now() + 1000);
  const store::MessageId lower = PutForeign(*store_, kAlice, 1, "theirs low\r\n", 1);
  Result<FolderView> view = OpenFolder("INBOX");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  ASSERT_EQ(view->messages.size(), 4u) << "nothing is lost";
  std::map<store::MessageId, uint32_t> uid_of;
  for (const MailboxEntry& e : view->messages) uid_of[e.id] = e.uid;
  EXPECT_EQ(uid_of[lower], 1u) << "the lower message id keeps UID 1";
  EXPECT_GT(uid_of[before[0].id], 2u) << "ours had the higher id: it moves";
  EXPECT_EQ(uid_of[before[1].id], 2u) << "ours had the lower id: it stays";
  EXPECT_GT(uid_of[higher], 2u);
  Uids uids;
  for (const MailboxEntry& e : view->messages) uids.push_back(e.uid);
  EXPECT_TRUE(std::adjacent_find(uids.begin(), uids.end()) == uids.end()) << "unique UIDs";
  EXPECT_TRUE(std::is_sorted(uids.begin(), uids.end()));
  EXPECT_GT(view->status.uidnext, uids.back());
  EXPECT_EQ(UidsIn("INBOX"), uids) << "the new UIDs are durable";
  // The sequencer continues after them.
  ASSERT_TRUE(Deliver({kAlice}, "next\r\n").ok());
  EXPECT_GT(UidsIn("INBOX").back(), uids.back());
}

TEST_F(MailServiceImapTest, TheSequencerMovesPastUidsItNeverHandedOut) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  // The other side's manager reserved further ahead; its profile lost.
  PutForeign(*store_, kAlice, 5000, "far\r\n", hlc_.Now() + 1000);
  EXPECT_EQ(UidsIn("INBOX"), (Uids{1, 5000}));
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  Uids uids = UidsIn("INBOX");
  ASSERT_EQ(uids.size(), 3u);
  EXPECT_GT(uids[2], 5000u) << "no UID below one already in the folder";
}

TEST_F(MailServiceImapTest, RenumberMovesAMessageOnceAndKeepsTheOrder) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  ASSERT_TRUE(Deliver({kAlice}, "c\r\n").ok());
  std::vector<MailboxEntry> m = Messages("INBOX");
  ASSERT_EQ(m.size(), 3u);
  // Two sessions renumber the same late messages from one listing.
  ASSERT_TRUE(Run(mail_->Renumber(kAlice, "INBOX", {m[1], m[0]}, 3)).ok());
  ASSERT_TRUE(Run(mail_->Renumber(kAlice, "INBOX", {m[0], m[1]}, 3)).ok());
  std::vector<MailboxEntry> after = Messages("INBOX");
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(Bodies(after), (Strings{"c\r\n", "a\r\n", "b\r\n"}));
  EXPECT_EQ(after[0].uid, 3u);
  EXPECT_EQ(after[1].uid, 4u) << "moved once, by the first renumbering";
  EXPECT_EQ(after[2].uid, 5u);
  ASSERT_TRUE(Deliver({kAlice}, "d\r\n").ok());
  EXPECT_EQ(UidsIn("INBOX").back(), 8u) << "the second renumbering's UIDs are spent, not reused";
}

TEST_F(MailServiceImapTest, ACachedReReadListsOnlyWhatChanged) {
  ASSERT_TRUE(Deliver({kAlice}, "a\r\n").ok());
  ListingCache cache;
  auto open = [&](const std::string& folder) { return OpenCached(folder, cache); };
  FolderView v = open("INBOX");
  EXPECT_FALSE(v.unchanged);
  ASSERT_EQ(v.messages.size(), 1u);
  const MailboxEntry first = v.messages[0];
  v = open("INBOX");
  EXPECT_TRUE(v.unchanged);
  EXPECT_TRUE(v.messages.empty());
  EXPECT_EQ(v.status.folder.name(), "INBOX") << "the status is fresh";
  ASSERT_TRUE(Deliver({kAlice}, "b\r\n").ok());
  v = open("INBOX");
  EXPECT_FALSE(v.unchanged);
  EXPECT_EQ(v.messages.size(), 2u);
  ASSERT_TRUE(Run(mail_->SetFlags(kAlice, {first}, kAdd, {"\\Seen"})).ok());
  v = open("INBOX");
  EXPECT_FALSE(v.unchanged);
  ASSERT_EQ(v.messages.size(), 2u);
  EXPECT_EQ(v.messages[0].flags, Flags{"\\Seen"});
  EXPECT_TRUE(open("INBOX").unchanged);
  // A change in another folder of the user lists again (one version per user).
  ASSERT_TRUE(Append("Sent", {}, 0, "s\r\n").ok());
  v = open("INBOX");
  EXPECT_FALSE(v.unchanged);
  EXPECT_EQ(v.messages.size(), 2u);
  // Another folder replaces the cache.
  EXPECT_EQ(open("Sent").messages.size(), 1u);
  v = open("INBOX");
  EXPECT_FALSE(v.unchanged);
  EXPECT_EQ(v.messages.size(), 2u);
}

// A node whose fragment of the user empties leaves the mail map. A session
// that showed its messages must still hear from it: a node not asked looks
// like one that is down, and the session would keep the expunged messages.
TEST_F(MailServiceImapTest, ACachedReReadAsksTheNodeThatHeldTheLastMessage) {
  ASSERT_TRUE(Deliver({kAlice}, "only\r\n").ok());
  ListingCache cache;
  FolderView v = OpenCached("INBOX", cache);
  ASSERT_EQ(v.messages.size(), 1u);
  EXPECT_EQ(v.answered, std::vector<NodeId>{kSelf});
  ASSERT_TRUE(Run(mail_->DeleteMessages(kAlice, v.messages)).ok());
  ASSERT_TRUE(Folders({})->mail_map.empty()) << "the emptied node left the mail map";
  v = OpenCached("INBOX", cache);
  EXPECT_FALSE(v.unchanged);
  EXPECT_TRUE(v.messages.empty());
  EXPECT_EQ(v.answered, std::vector<NodeId>{kSelf}) << "it answered: the message is gone";
  // It has nothing left to report: the next re-read asks the mail map only.
  v = OpenCached("INBOX", cache);
  EXPECT_TRUE(v.messages.empty());
  EXPECT_TRUE(v.answered.empty());
  EXPECT_TRUE(cache.parts.empty());
}

TEST_F(MailServiceImapTest, AVersionWatchAnswersWhenTheUsersMessagesChange) {
  using std::chrono::milliseconds;
  const uint32_t slot = store::Store::VersionSlotOf(kAlice);
  Result<std::vector<SlotVersion>> now =
      Run(fragments_->WatchVersions({{slot, 0}}, milliseconds(0)));
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  ASSERT_EQ(now->size(), 1u) << "an unknown version is reported at once";
  const uint64_t v = now->front().version;
  EXPECT_EQ(v, store_->SlotVersion(slot));
  const auto started = std::chrono::steady_clock::now();
  Result<std::vector<SlotVersion>> quiet =
      Run(fragments_->WatchVersions({{slot, v}}, milliseconds(100)));
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->empty()) << "nothing changed";
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(100)) << "it waited";
  // A delivery during the wait ends it.
  std::vector<asio::awaitable<Status>> both;
  auto watch = [&]() -> asio::awaitable<Status> {
    std::vector<SlotVersion> known(1, SlotVersion{slot, v});  // named: g++ 12 coroutines
    Result<std::vector<SlotVersion>> r =
        co_await fragments_->WatchVersions(std::move(known), milliseconds(5000));
    if (!r.ok()) co_return r.status();
    if (r->size() != 1 || r->front().version == v) co_return Status::Internal("no change seen");
    co_return Status::Ok();
  };
  auto deliver = [&]() -> asio::awaitable<Status> {
    std::vector<std::string> to(1, kAlice);
    co_return co_await mail_->Deliver(std::move(to), "w\r\n");
  };
  both.push_back(watch());
  both.push_back(deliver());
  const auto t0 = std::chrono::steady_clock::now();
  for (const Status& st : Run(WhenAll(std::move(both)))) EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000)) << "not the whole wait";
  EXPECT_EQ(Run(fragments_->WatchVersions({{store::Store::kVersionSlots, 0}}, milliseconds(0)))
                .status()
                .code(),
            Code::kInvalidArgument);
}

TEST_F(MailServiceImapTest, Authenticate) {
  Result<std::string> user = Run(mail_->Authenticate("Alice", "pw"));
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(*user, kAlice);
  EXPECT_EQ(*Run(mail_->Authenticate("alice@EXAMPLE.test", "pw")), kAlice);
  const std::pair<const char*, const char*> denied[] = {{"alice", "wrong"},
                                                        {"alice", ""},
                                                        {"nobody", "pw"},
                                                        {"alice@elsewhere.test", "pw"},
                                                        {"bad address", "pw"}};
  for (const auto& [login, password] : denied) {
    SCOPED_TRACE(login);
    EXPECT_EQ(Run(mail_->Authenticate(login, password)).status().code(), Code::kPermissionDenied);
  }
}

TEST_F(MailServiceImapTest, FolderChangesGoToTheManager) {
  using Kind = manager::FolderOp::Kind;
  ASSERT_TRUE(Folders({Kind::kCreate, "Projects/2024"}).ok());
  Result<manager::FolderState> st = Folders({});
  ASSERT_TRUE(st.ok());
  Strings names;
  for (const manager::FolderStatus& f : st->folders) names.push_back(f.folder.name());
  EXPECT_EQ(names,
            (Strings{"Drafts", "INBOX", "Junk", "Projects", "Projects/2024", "Sent", "Trash"}));
  ASSERT_TRUE(Append("Projects/2024", {}, 0, "p\r\n").ok());
  ASSERT_TRUE(Folders({Kind::kRename, "Projects", "Work"}).ok());
  EXPECT_EQ(OpenFolder("Projects/2024").status().code(), Code::kNotFound);
  std::vector<MailboxEntry> moved = Messages("Work/2024");
  ASSERT_EQ(moved.size(), 1u) << "a renamed folder keeps its messages";
  EXPECT_EQ(Body(moved[0]), "p\r\n");
  EXPECT_EQ(Folders({Kind::kDelete, "INBOX"}).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(Folders({}, "nobody@example.test").status().code(), Code::kNotFound);
  // Changes are durable: a restarted node has them.
  Close();
  Open();
  EXPECT_EQ(Messages("Work/2024").size(), 1u);
}

// ---- postmaster (RFC 5321 §4.5.1, mail/recipients.h) ----------------------------

class MailServicePostmasterTest : public MailServiceTest {
 protected:
  void SetUp() override {
    options_.domains = {"example.test", "second.test"};
    MailServiceTest::SetUp();
  }
  size_t MailboxSize(const std::string& user) {
    Result<FolderView> v = Run(mail_->OpenFolder(user, "INBOX"));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->messages.size() : 0;
  }
  PostmasterStep Ensure(const std::string& mailbox, bool create) {
    PostmasterOptions o;
    o.mailbox = mailbox;
    o.create = create;
    o.first_retry = std::chrono::milliseconds(1);
    return Run(EnsurePostmaster(o, *router_, [] { return false; }));
  }
};

TEST_F(MailServicePostmasterTest, EveryLocalDomainsPostmasterReachesOneMailbox) {
  ASSERT_TRUE(Create("postmaster@example.test", "pw").ok());
  for (const char* to : {"postmaster", "PostMaster@Second.Test", "postmaster@example.test"}) {
    EXPECT_EQ(Run(mail_->CheckRecipient(to)), RecipientCheck::kLocalUser) << to;
  }
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster@elsewhere.test")),
            RecipientCheck::kNotLocalDomain);
  // Three names of one mailbox in one transaction: one copy.
  MailService::DeliveryReport report;
  ASSERT_TRUE(
      Run(mail_->Deliver({"postmaster@second.test", "Postmaster", "postmaster@example.test"},
                         "x\r\n", &report))
          .ok());
  EXPECT_EQ(report.copies, 1u);
  EXPECT_EQ(MailboxSize("postmaster@example.test"), 1u);
  EXPECT_EQ(Users(), std::vector<std::string>{"postmaster@example.test"});
}

TEST_F(MailServicePostmasterTest, ConfiguredMailboxGetsThePostmasterMail) {
  Close();
  options_.postmaster = "admin@second.test";
  Open();
  ASSERT_TRUE(Create("admin@second.test", "pw").ok());
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster@example.test")), RecipientCheck::kLocalUser);
  ASSERT_TRUE(Run(mail_->Deliver({"postmaster@example.test"}, "x\r\n")).ok());
  EXPECT_EQ(MailboxSize("admin@second.test"), 1u);
}

TEST_F(MailServicePostmasterTest, EnsureCreatesTheDefaultMailboxOnce) {
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster@second.test")), RecipientCheck::kUnknownUser);
  EXPECT_EQ(Ensure("postmaster@example.test", true), PostmasterStep::kDone);
  EXPECT_EQ(Users(), std::vector<std::string>{"postmaster@example.test"});
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster@second.test")), RecipientCheck::kLocalUser);
  // Created without a password: no login until an operator sets one.
  Result<manager::UserInfo> info = Run(router_->LookupUser("postmaster@example.test", true));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->password_hash, "");
  EXPECT_EQ(Run(mail_->Authenticate("postmaster", "")).status().code(), Code::kPermissionDenied);
  ASSERT_TRUE(Manage(manager::UserOpKind::kSetPassword, "postmaster@example.test", "pm").ok());
  ASSERT_TRUE(Run(mail_->Deliver({"postmaster"}, "x\r\n")).ok());
  // Later starts (and other nodes) leave it alone: password and mail stay.
  Close();
  Open();
  EXPECT_EQ(Ensure("postmaster@example.test", true), PostmasterStep::kDone);
  EXPECT_TRUE(Run(mail_->Authenticate("postmaster", "pm")).ok());
  EXPECT_EQ(MailboxSize("postmaster@example.test"), 1u);
}

TEST_F(MailServicePostmasterTest, EnsureFromManyNodesAtOnceCreatesOneMailbox) {
  std::vector<asio::awaitable<PostmasterStep>> starts;
  for (int i = 0; i < 4; ++i) {
    PostmasterOptions o;
    o.mailbox = "postmaster@example.test";
    o.first_retry = std::chrono::milliseconds(1);
    starts.push_back(EnsurePostmaster(o, *router_, [] { return false; }));
  }
  for (PostmasterStep step : Run(WhenAll(std::move(starts)))) {
    EXPECT_EQ(step, PostmasterStep::kDone);
  }
  EXPECT_EQ(Users(), std::vector<std::string>{"postmaster@example.test"});
}

TEST_F(MailServicePostmasterTest, EnsureLeavesAConfiguredMailboxToTheOperator) {
  EXPECT_EQ(Ensure("admin@example.test", false), PostmasterStep::kMissing);
  EXPECT_TRUE(Users().empty());
  ASSERT_TRUE(Create("admin@example.test", "pw").ok());
  EXPECT_EQ(Ensure("admin@example.test", false), PostmasterStep::kDone);
}

TEST(PostmasterStepTest, Table) {
  EXPECT_EQ(AfterPostmasterLookup(Code::kOk, true), PostmasterStep::kDone);
  EXPECT_EQ(AfterPostmasterLookup(Code::kNotFound, true), PostmasterStep::kCreate);
  EXPECT_EQ(AfterPostmasterLookup(Code::kNotFound, false), PostmasterStep::kMissing);
  // Never a creation on a lookup that did not say "no such user" (users not
  // known yet, bucket being rebuilt, manager away).
  for (Code c : {Code::kUnavailable, Code::kAborted, Code::kUnknownOutcome, Code::kIoError}) {
    EXPECT_EQ(AfterPostmasterLookup(c, true), PostmasterStep::kRetry);
  }
  EXPECT_EQ(AfterPostmasterLookup(Code::kInvalidArgument, true), PostmasterStep::kFailed);
  EXPECT_EQ(AfterPostmasterCreate(Code::kOk), PostmasterStep::kDone);
  EXPECT_EQ(AfterPostmasterCreate(Code::kAlreadyExists), PostmasterStep::kDone);
  EXPECT_EQ(AfterPostmasterCreate(Code::kUnavailable), PostmasterStep::kRetry);
  EXPECT_EQ(AfterPostmasterCreate(Code::kInvalidArgument), PostmasterStep::kFailed);
}

// ---- a 4xx after a store that may have happened (DeliveryReport) ---------------

// Answers every Store with `answer`; with `inner`, stores there first (the
// answer then is what the proxy hears about a store that happened).
class ScriptedStore : public FragmentStore {
 public:
  ScriptedStore(Status answer, FragmentStore* inner) : answer_(std::move(answer)), inner_(inner) {}
  asio::awaitable<Status> Store(std::vector<NewMessage> messages,
                                std::shared_ptr<const std::string> body,
                                cluster::Epoch proxy_epoch) override {
    if (inner_) {
      Status st = co_await inner_->Store(std::move(messages), std::move(body), proxy_epoch);
      if (!st.ok()) co_return st;
    }
    co_return answer_;
  }
  asio::awaitable<Result<Listing>> List(std::string, uint32_t, uint64_t) override {
    co_return Status::Unavailable("scripted");
  }
  asio::awaitable<Result<std::string>> Fetch(std::string, uint32_t, store::MessageId) override {
    co_return Status::Unavailable("scripted");
  }
  asio::awaitable<Status> Delete(std::string, uint32_t, std::vector<store::MessageId>) override {
    co_return Status::Unavailable("scripted");
  }
  asio::awaitable<Result<std::vector<store::MessageId>>> SetFlags(
      std::string, uint32_t, std::vector<FlagChange>) override {
    co_return Status::Unavailable("scripted");
  }

 private:
  const Status answer_;
  FragmentStore* const inner_;
};

class MailServiceReportTest : public MailServiceTest {
 protected:
  static constexpr NodeId kPeer = 9;
  static constexpr char kAlice[] = "alice@example.test";
  static constexpr char kBob[] = "bob@example.test";

  void SetUp() override {
    options_.spread = 1;  // each user's mail stays on its one mail-map node
    node_.AddPeer(kPeer, &peer_);
    MailServiceTest::SetUp();
    ASSERT_TRUE(Create(kAlice, "pw").ok());
    ASSERT_TRUE(Create(kBob, "pw").ok());
    ASSERT_TRUE(Run(router_->UpdateMailMap(kAlice, kSelf, true, hlc_.Now())).ok());
    ASSERT_TRUE(Run(router_->UpdateMailMap(kBob, kPeer, true, hlc_.Now())).ok());
  }
  Status Deliver(std::vector<std::string> to, MailService::DeliveryReport* report) {
    return Run(mail_->Deliver(std::move(to), "m\r\n", report));
  }
  // Alice's messages on this node.
  size_t AliceHere() {
    Result<Listing> l = Run(fragments_->List(kAlice, store::kInboxFolder, 0));
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? l->messages.size() : 0;
  }

  // Bob's node is out of disk: it refuses before storing anything.
  ScriptedStore peer_{Status::ResourceExhausted("disk full"), nullptr};
};

TEST_F(MailServiceReportTest, FailureAfterAnotherRecipientWasStoredMayHaveStored) {
  MailService::DeliveryReport report;
  Status st = Deliver({kAlice, kBob}, &report);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  EXPECT_TRUE(report.maybe_stored);
  EXPECT_EQ(AliceHere(), 1u) << "alice's copy is durable: the client's retry duplicates it";
}

TEST_F(MailServiceReportTest, FailureBeforeAnyStoreStoredNothing) {
  MailService::DeliveryReport report;
  EXPECT_EQ(Deliver({kBob}, &report).code(), Code::kResourceExhausted);
  EXPECT_FALSE(report.maybe_stored);
  ASSERT_TRUE(Deliver({kAlice}, &report).ok());
  EXPECT_FALSE(report.maybe_stored);
  EXPECT_EQ(report.copies, 1u);
}

TEST_F(MailServiceReportTest, UnknownOutcomeMayHaveStored) {
  // This node stores, then the answer is lost on the way back.
  ScriptedStore lost(Status::UnknownOutcome("deadline exceeded"), fragments_.get());
  node_.Set(manager_.get(), &lost);
  MailService::DeliveryReport report;
  Status st = Deliver({kAlice}, &report);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_TRUE(report.maybe_stored);
  EXPECT_EQ(AliceHere(), 1u);
}

// ---- the delivery budget: copies of a message made for another node's store ----

// Answers every Store OK, noting how much of the budget was taken meanwhile.
class BudgetWatchingStore : public ScriptedStore {
 public:
  explicit BudgetWatchingStore(const MemoryBudget& budget)
      : ScriptedStore(Status::Ok(), nullptr), budget_(budget) {}
  asio::awaitable<Status> Store(std::vector<NewMessage>, std::shared_ptr<const std::string>,
                                cluster::Epoch) override {
    ++stores;
    taken = budget_.used();
    co_return Status::Ok();
  }
  int stores = 0;
  uint64_t taken = 0;

 private:
  const MemoryBudget& budget_;
};

class MailServiceBudgetTest : public MailServiceReportTest {
 protected:
  void SetUp() override {
    options_.spread = 1;  // each user's mail stays on its one mail-map node
    options_.delivery_budget = &budget_;
    node_.AddPeer(kPeer, &watching_);
    MailServiceTest::SetUp();
    ASSERT_TRUE(Create(kAlice, "pw").ok());
    ASSERT_TRUE(Create(kBob, "pw").ok());
    ASSERT_TRUE(Run(router_->UpdateMailMap(kAlice, kSelf, true, hlc_.Now())).ok());
    ASSERT_TRUE(Run(router_->UpdateMailMap(kBob, kPeer, true, hlc_.Now())).ok());
  }
  Status DeliverBody(std::vector<std::string> to, size_t size) {
    return Run(mail_->Deliver(std::move(to), std::string(size, 'x')));
  }

  MemoryBudget budget_{5000};
  BudgetWatchingStore watching_{budget_};
};

TEST_F(MailServiceBudgetTest, AStoreOnAnotherNodeReservesTwoCopiesWhileItRuns) {
  ASSERT_TRUE(DeliverBody({kBob}, 2000).ok());
  EXPECT_EQ(watching_.stores, 1);
  EXPECT_EQ(watching_.taken, 4000u);  // the request's copy and its bytes on the wire
  EXPECT_EQ(budget_.used(), 0u);
}

TEST_F(MailServiceBudgetTest, ADeliveryThatCannotReserveTheCopiesFailsAsOutOfStorage) {
  Status st = DeliverBody({kBob}, 3000);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();  // SMTP 452 4.3.1
  EXPECT_EQ(watching_.stores, 0);
  EXPECT_EQ(budget_.used(), 0u);
  EXPECT_EQ(budget_.refusals(), 1u);
}

TEST_F(MailServiceBudgetTest, ALocalStoreMakesNoCopyToReserve) {
  ASSERT_TRUE(DeliverBody({kAlice}, 6000).ok());  // more than the whole budget
  EXPECT_EQ(budget_.peak(), 0u);
  EXPECT_EQ(AliceHere(), 1u);
}

// Stored, but the manager could not be told: the proxy must not store the
// same message id elsewhere (a second replica set a later delete would miss),
// so the answer says the store may have happened.
TEST_F(MailServiceTest, AStoreWhoseManagerCannotBeToldMayHaveHappened) {
  ASSERT_TRUE(Create("dora@example.test", "pw").ok());
  node_.Set(nullptr, fragments_.get());  // no manager reachable
  NewMessage m;
  m.user = "dora@example.test";
  const store::MessageId id{hlc_.Now(), kSelf, 1};
  m.meta.set_id(id.ToBytes());
  m.meta.set_folder(store::kInboxFolder);
  m.meta.set_size(3);
  m.meta.set_hlc(id.hlc);
  m.meta.add_replicas(kSelf);
  m.meta.add_replicas(8);
  m.in_map = false;  // the node must announce itself
  // Records what the fragment hands to replication.
  struct Recorder : replication::Sink {
    asio::awaitable<std::vector<size_t>> Replicate(std::vector<replication::Update> u) override {
      replicated += u.size();
      co_return std::vector<size_t>(u.size(), 1);
    }
    void Track(replication::Entry e) override { tracked.push_back(std::move(e)); }
    size_t replicated = 0;
    std::vector<replication::Entry> tracked;
  } sink;
  fragments_->SetReplication(&sink);
  std::vector<NewMessage> batch{m};
  Status st = Run(fragments_->Store(std::move(batch), std::make_shared<const std::string>("m\r\n"),
                                    node_.Current()->epoch));
  node_.Set(manager_.get(), fragments_.get());
  fragments_->SetReplication(nullptr);
  EXPECT_EQ(st.code(), Code::kUnknownOutcome) << st.ToString();
  // The other replica still gets its copy, in the background.
  EXPECT_EQ(sink.replicated, 0u);
  ASSERT_EQ(sink.tracked.size(), 1u);
  EXPECT_EQ(sink.tracked[0].remaining, (std::set<NodeId>{8}));
  Result<Listing> held = Run(fragments_->List("dora@example.test", store::kInboxFolder, 0));
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->messages.size(), 1u) << "the copy is durable here";
}

TEST_F(MailServiceTest, AReplicaTakingALaterVersionKeepsEveryHolderNamed) {
  // Node 9 was added by a re-replication this node saw; a tombstone made by
  // node 8 from the older list must still reach it (docs/replication.md).
  ASSERT_TRUE(Create("alice@example.test", "pw").ok());
  const std::string user = "alice@example.test";
  const std::string id(16, '\x01');
  store::MessageMeta live;
  live.set_version(1);
  live.set_id(id);
  live.set_folder(1);
  live.set_size(5);
  live.set_hlc(hlc_.Now());
  for (NodeId r : {kSelf, NodeId{8}, NodeId{9}}) live.add_replicas(r);
  auto body = std::make_shared<const std::string>("hello");
  Result<uint64_t> held = Run(fragments_->ApplyReplica(user, live, body, false, {}));
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(fragments_->widened(), 0u);

  store::MessageMeta tomb = live;
  tomb.set_tombstone(true);
  tomb.set_size(0);
  tomb.set_hlc(hlc_.Now());
  tomb.clear_replicas();
  for (NodeId r : {kSelf, NodeId{8}}) tomb.add_replicas(r);
  held = Run(fragments_->ApplyReplica(user, tomb, nullptr, true, {}));
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_GT(*held, store::VersionOf(tomb)) << "written again as a later version";
  EXPECT_EQ(fragments_->widened(), 1u);
  auto stored =
      store_->GetMessage(BucketOf(user, kBuckets), user, 1, *store::MessageId::FromBytes(id));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  const store::MessageMeta& m = **stored;
  EXPECT_TRUE(m.tombstone());
  EXPECT_EQ(std::vector<uint32_t>(m.replicas().begin(), m.replicas().end()),
            (std::vector<uint32_t>{kSelf, 8, 9}));
  EXPECT_EQ(store::VersionOf(m), *held);

  // A later version naming every holder is taken as it is.
  store::MessageMeta later = m;
  later.set_hlc(hlc_.Now());
  held = Run(fragments_->ApplyReplica(user, later, nullptr, true, {}));
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(*held, store::VersionOf(later));
  EXPECT_EQ(fragments_->widened(), 1u);
}

}  // namespace
}  // namespace porcupine::mail
