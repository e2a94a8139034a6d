// The delivery and retrieval flows on a one-node cluster with a real store:
// the production manager, router and fragments, with a fixed view.
#include "mail/mail_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "core/async.h"
#include "core/hash.h"
#include "core/password.h"
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
  manager::UserManager* ManagerOn(NodeId n) override { return n == kSelf ? m_ : nullptr; }
  NodeId self() const override { return kSelf; }
  FragmentStore* FragmentsOn(NodeId n) override { return n == kSelf ? f_ : nullptr; }
  uint64_t LoadOf(NodeId) override { return 0; }
  std::shared_ptr<const cluster::View> Current() const override { return view_; }
  asio::awaitable<void> WaitNewer(cluster::Epoch, std::chrono::milliseconds) override { co_return; }

 private:
  std::shared_ptr<const cluster::View> view_;
  manager::UserManager* m_ = nullptr;
  FragmentStore* f_ = nullptr;
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
    manager_ = std::make_unique<manager::LocalManager>(mo, *writer_, hlc_);
    const cluster::View& view = *node_.Current();
    manager_->InstallView(view);
    std::vector<uint32_t> all = manager::BucketsToAnnounce({}, view, kSelf);
    auto scanned = manager::ScanAnnouncements(*store_, view, all, hlc_.Now());
    ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
    for (auto& [to, chunks] : manager::MakeChunks(view, std::move(*scanned), 100)) {
      for (const manager::RebuildChunk& c : chunks) manager_->ApplyRebuild(to, c);
    }
    ASSERT_TRUE(manager_->Ready());
    router_ = std::make_unique<manager::ManagerRouter>(manager::RouterOptions{}, node_, node_);
    fragments_ =
        std::make_unique<LocalFragments>(FragmentOptions{}, *store_, hlc_, kSelf, *router_, node_);
    node_.Set(manager_.get(), fragments_.get());
    MailServiceOptions o;
    o.domains = {"example.test"};
    mail_ = std::make_unique<MailService>(o, *router_, node_, node_, credentials_, hlc_);
  }
  void Close() {
    mail_.reset();
    fragments_.reset();
    router_.reset();
    manager_.reset();
    writer_.reset();
    store_.reset();
  }

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
  asio::io_context io_;
  asio::thread_pool pool_{1};
  Hlc hlc_{SystemNowMs};
  OneNode node_;
  manager::Credentials credentials_{pool_.get_executor(), 100};
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

}  // namespace
}  // namespace porcupine::mail
