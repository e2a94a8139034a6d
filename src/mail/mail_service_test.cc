// The delivery and retrieval flows on one node with a real store.
#include "mail/mail_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "core/async.h"
#include "manager/local_manager.h"

namespace porcupine::mail {
namespace {

constexpr NodeId kSelf = 7;
constexpr uint32_t kBuckets = 16;

class OneNode : public manager::ManagerDirectory, public NodeDirectory {
 public:
  OneNode(manager::UserManager& m, FragmentStore& f) : m_(m), f_(f) {}
  manager::UserManager* ManagerOn(NodeId n) override { return n == kSelf ? &m_ : nullptr; }
  NodeId self() const override { return kSelf; }
  std::vector<NodeId> LiveNodes() const override { return {kSelf}; }
  FragmentStore* FragmentsOn(NodeId n) override { return n == kSelf ? &f_ : nullptr; }

 private:
  manager::UserManager& m_;
  FragmentStore& f_;
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

  void Open() {
    store::Options so;
    so.data_dir = dir_;
    store::NodeMeta init;
    init.set_node_id(kSelf);
    init.set_buckets(kBuckets);
    auto s = store::Store::Open(so, init);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    manager::LocalManagerOptions mo;
    mo.self = kSelf;
    mo.buckets = kBuckets;
    mo.password_cost = {1, 8};
    manager_ = std::make_unique<manager::LocalManager>(mo, *store_, pool_.get_executor());
    ASSERT_TRUE(manager_->Rebuild().ok());
    fragments_ = std::make_unique<LocalFragments>(*store_, hlc_, kBuckets);
    dir_objs_ = std::make_unique<OneNode>(*manager_, *fragments_);
    MailServiceOptions o;
    o.domains = {"example.test"};
    mail_ = std::make_unique<MailService>(o, map_, *dir_objs_, *dir_objs_, hlc_);
  }
  void Close() {
    mail_.reset();
    dir_objs_.reset();
    fragments_.reset();
    manager_.reset();
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

  std::string dir_;
  asio::io_context io_;
  asio::thread_pool pool_{1};
  Hlc hlc_{SystemNowMs};
  cluster::UserMap map_{kBuckets, kSelf};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<manager::LocalManager> manager_;
  std::unique_ptr<LocalFragments> fragments_;
  std::unique_ptr<OneNode> dir_objs_;
  std::unique_ptr<MailService> mail_;
};

TEST_F(MailServiceTest, ClassifiesRecipients) {
  ASSERT_TRUE(Run(manager_->CreateUser("alice@example.test", "pw")).ok());
  EXPECT_EQ(Run(mail_->CheckRecipient("Alice@Example.Test")), RecipientCheck::kLocalUser);
  EXPECT_EQ(Run(mail_->CheckRecipient("bob@example.test")), RecipientCheck::kUnknownUser);
  EXPECT_EQ(Run(mail_->CheckRecipient("alice@elsewhere.test")), RecipientCheck::kNotLocalDomain);
  EXPECT_EQ(Run(mail_->CheckRecipient("bad address@example.test")), RecipientCheck::kBadAddress);
  // A bare local part (RFC 5321 "postmaster") means the first local domain.
  EXPECT_EQ(Run(mail_->CheckRecipient("postmaster")), RecipientCheck::kUnknownUser);
  ASSERT_TRUE(Run(manager_->CreateUser("postmaster@example.test", "pw")).ok());
  EXPECT_EQ(Run(mail_->CheckRecipient("Postmaster")), RecipientCheck::kLocalUser);
}

TEST_F(MailServiceTest, DeliverListReadDeleteSurvivesReopen) {
  ASSERT_TRUE(Run(manager_->CreateUser("alice@example.test", "pw")).ok());
  ASSERT_TRUE(Run(manager_->CreateUser("bob@example.test", "pw2")).ok());
  ASSERT_TRUE(Run(mail_->Deliver({"alice@example.test", "bob@example.test"}, "one\r\n")).ok());
  ASSERT_TRUE(Run(mail_->Deliver({"alice@example.test"}, "two\r\n")).ok());
  EXPECT_EQ(mail_->stats().messages_stored, 3u);

  std::string user;
  auto box = Run(mail_->OpenMailbox("alice@example.test", "pw", &user));
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  EXPECT_EQ(user, "alice@example.test");
  ASSERT_EQ(box->size(), 2u);
  EXPECT_LT((*box)[0].id, (*box)[1].id);
  EXPECT_EQ(*Run(mail_->ReadMessage(user, (*box)[0].id)), "one\r\n");
  EXPECT_EQ(*Run(mail_->ReadMessage(user, (*box)[1].id)), "two\r\n");
  EXPECT_EQ(Run(mail_->OpenMailbox("alice", "wrong", &user)).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(Run(mail_->OpenMailbox("nobody", "pw", &user)).status().code(),
            Code::kPermissionDenied);

  ASSERT_TRUE(Run(mail_->DeleteMessages("alice@example.test", {(*box)[0].id})).ok());
  Close();
  Open();  // soft state is rebuilt from the store
  auto again = Run(mail_->OpenMailbox("alice", "pw", &user));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, (*box)[1].id);
  EXPECT_EQ(Run(mail_->ReadMessage(user, (*box)[0].id)).status().code(), Code::kNotFound);
  auto bobs = Run(mail_->OpenMailbox("bob@example.test", "pw2", &user));
  ASSERT_TRUE(bobs.ok());
  EXPECT_EQ(bobs->size(), 1u);
}

TEST_F(MailServiceTest, UserAdministration) {
  ASSERT_TRUE(Run(manager_->CreateUser("carol@example.test", "a")).ok());
  EXPECT_EQ(Run(manager_->CreateUser("carol@example.test", "b")).code(), Code::kAlreadyExists);
  ASSERT_TRUE(Run(mail_->Deliver({"carol@example.test"}, "x\r\n")).ok());
  ASSERT_TRUE(Run(manager_->SetPassword("carol@example.test", "new")).ok());
  std::string user;
  EXPECT_FALSE(Run(mail_->OpenMailbox("carol", "a", &user)).ok());
  EXPECT_TRUE(Run(mail_->OpenMailbox("carol", "new", &user)).ok());
  EXPECT_EQ(manager_->ListUsers(), std::vector<std::string>{"carol@example.test"});
  ASSERT_TRUE(Run(mail_->DeleteAllMail("carol@example.test")).ok());
  ASSERT_TRUE(Run(manager_->DeleteUser("carol@example.test")).ok());
  EXPECT_EQ(Run(manager_->DeleteUser("carol@example.test")).code(), Code::kNotFound);
  Close();
  Open();
  EXPECT_TRUE(manager_->ListUsers().empty());
  EXPECT_EQ(Run(mail_->CheckRecipient("carol@example.test")), RecipientCheck::kUnknownUser);
  // Re-creating a deleted user starts with an empty mailbox.
  ASSERT_TRUE(Run(manager_->CreateUser("carol@example.test", "z")).ok());
  auto box = Run(mail_->OpenMailbox("carol", "z", &user));
  ASSERT_TRUE(box.ok());
  EXPECT_TRUE(box->empty());
}

}  // namespace
}  // namespace porcupine::mail
