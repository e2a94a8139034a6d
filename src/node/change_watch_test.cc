// ChangeWatch against fake members whose slot versions the test moves.
#include "node/change_watch.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

namespace porcupine::node {
namespace {

using namespace std::chrono_literals;
using cluster::NodeId;

// One member's store of versions: a watch call answers at once when a
// version differs, else after its wait (no real waiting needed here).
class FakeMember : public mail::FragmentStore {
 public:
  void Bump(uint32_t slot) {
    std::lock_guard lock(mu_);
    ++versions_[slot];
  }
  void SetDown(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }
  asio::awaitable<Result<std::vector<mail::SlotVersion>>> WatchVersions(
      std::vector<mail::SlotVersion> slots, std::chrono::milliseconds wait) override {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (auto left = wait; left > 0ms; left -= 5ms) {
      {
        std::lock_guard lock(mu_);
        if (down_) co_return Status::Unavailable("down");
        std::vector<mail::SlotVersion> out;
        for (const mail::SlotVersion& s : slots) {
          const uint64_t v = versions_[s.slot] + 100;  // never 0
          if (v != s.version) out.push_back({s.slot, v});
        }
        if (!out.empty()) co_return out;
      }
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return std::vector<mail::SlotVersion>{};
  }
  // The rest of the interface is not used by the watch.
  asio::awaitable<Status> Store(std::vector<mail::NewMessage>, std::shared_ptr<const std::string>,
                                cluster::Epoch) override {
    co_return Status::Unavailable("");
  }
  asio::awaitable<Result<mail::Listing>> List(std::string, uint32_t, uint64_t) override {
    co_return Status::Unavailable("");
  }
  asio::awaitable<Result<std::string>> Fetch(std::string, uint32_t, store::MessageId) override {
    co_return Status::Unavailable("");
  }
  asio::awaitable<Status> Delete(std::string, uint32_t, std::vector<store::MessageId>) override {
    co_return Status::Unavailable("");
  }
  asio::awaitable<Result<std::vector<store::MessageId>>> SetFlags(
      std::string, uint32_t, std::vector<mail::FlagChange>) override {
    co_return Status::Unavailable("");
  }

 private:
  std::mutex mu_;
  std::map<uint32_t, uint64_t> versions_;
  bool down_ = false;
};

class Cluster : public mail::NodeDirectory, public manager::ViewSource {
 public:
  Cluster() {
    cluster::View v;
    v.epoch = cluster::MakeEpoch(1, 1);
    v.members = {{1, 1, "a:1", "n1"}, {2, 1, "b:1", "n2"}};
    v.user_map = cluster::UserMap(8, 1, v.epoch);
    view_ = std::make_shared<const cluster::View>(v);
  }
  NodeId self() const override { return 1; }
  mail::FragmentStore* FragmentsOn(NodeId n) override {
    return n == 1 ? &one : n == 2 ? &two : nullptr;
  }
  uint64_t LoadOf(NodeId) override { return 0; }
  std::shared_ptr<const cluster::View> Current() const override { return view_; }
  asio::awaitable<void> WaitNewer(cluster::Epoch, std::chrono::milliseconds) override { co_return; }

  FakeMember one, two;

 private:
  std::shared_ptr<const cluster::View> view_;
};

class ChangeWatchTest : public testing::Test {
 protected:
  ChangeWatchTest() : watch_({40ms, 5ms}, cluster_, cluster_, io_.get_executor()) {
    watch_.Start();
  }
  ~ChangeWatchTest() override {
    watch_.Stop();
    io_.run_for(200ms);
  }
  // Runs the loop until `done` holds (at most `limit`).
  template <typename Fn>
  bool RunUntil(Fn done, std::chrono::milliseconds limit = 2000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) return false;
      io_.run_for(5ms);
    }
    return true;
  }

  asio::io_context io_;
  Cluster cluster_;
  ChangeWatch watch_;
  const std::string alice_ = "alice@example.test";
  const uint32_t slot_ = store::Store::VersionSlotOf(alice_);
};

TEST_F(ChangeWatchTest, ReportsAChangeOnAnyMemberOnceArmed) {
  EXPECT_FALSE(watch_.Armed(alice_)) << "nobody watches a user nobody is interested in";
  auto interest = watch_.Watch(alice_);
  ASSERT_TRUE(RunUntil([&] { return watch_.Armed(alice_); }));
  const uint64_t before = watch_.Changes(alice_);
  io_.run_for(100ms);
  EXPECT_EQ(watch_.Changes(alice_), before) << "no change, no report";
  cluster_.two.Bump(slot_);
  ASSERT_TRUE(RunUntil([&] { return watch_.Changes(alice_) > before; }));
  const uint64_t after = watch_.Changes(alice_);
  cluster_.one.Bump(slot_);
  EXPECT_TRUE(RunUntil([&] { return watch_.Changes(alice_) > after; })) << "this node too";
}

TEST_F(ChangeWatchTest, AMemberThatDoesNotAnswerDisarms) {
  auto interest = watch_.Watch(alice_);
  ASSERT_TRUE(RunUntil([&] { return watch_.Armed(alice_); }));
  cluster_.two.SetDown(true);
  EXPECT_TRUE(RunUntil([&] { return !watch_.Armed(alice_); }))
      << "a session must re-read while a member is not watched";
  cluster_.two.SetDown(false);
  EXPECT_TRUE(RunUntil([&] { return watch_.Armed(alice_); }));
}

TEST_F(ChangeWatchTest, InterestEndsWithItsLastHandle) {
  auto first = watch_.Watch(alice_);
  auto second = watch_.Watch(alice_);
  ASSERT_TRUE(RunUntil([&] { return watch_.Armed(alice_); }));
  first.reset();
  io_.run_for(100ms);
  EXPECT_TRUE(watch_.Armed(alice_)) << "one session is still interested";
  second.reset();
  EXPECT_FALSE(watch_.Armed(alice_));
}

}  // namespace
}  // namespace porcupine::node
