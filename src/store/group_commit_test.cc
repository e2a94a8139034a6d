#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <vector>

namespace porcupine::store {
namespace {

using namespace std::chrono_literals;

WriteOps Ops(size_t bytes, Status error = Status::Ok()) {
  WriteOps w;
  w.ops.push_back({keys::Cf::kMsg, false, "k", std::string(bytes, 'v'), nullptr, nullptr});
  w.bytes = bytes + 1;
  w.error = std::move(error);
  return w;
}

// A writer that blocks every group until the test opens the gate, and records
// the group sizes it saw.
class GatedWriter {
 public:
  Status Write(const std::vector<const WriteOps*>& group) {
    {
      std::lock_guard lock(mu_);
      sizes_.push_back(group.size());
      ++entered_;
    }
    cv_.notify_all();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    return result_;
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits (bounded) until `n` groups entered Write.
  bool WaitEntered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_ >= n; });
  }
  std::vector<size_t> sizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }
  void set_result(Status s) { result_ = std::move(s); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
  std::vector<size_t> sizes_;
  Status result_;
};

// Collects callback results.
struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> got;
  GroupCommitter::Callback Add() {
    return [this](Status s) {
      std::lock_guard lock(mu);
      got.push_back(std::move(s));
      cv.notify_all();
    };
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return got.size() >= n; });
  }
};

TEST(GroupCommitter, QueuedBatchesShareOneWrite) {
  GatedWriter writer;
  Results results;
  GroupCommitter gc({}, [&](const auto& g) { return writer.Write(g); });
  gc.Submit(Ops(10), results.Add());
  ASSERT_TRUE(writer.WaitEntered(1));  // the first group is in flight alone
  for (int i = 0; i < 100; ++i) gc.Submit(Ops(10), results.Add());
  EXPECT_EQ(gc.pending(), 101u);
  writer.Open();
  ASSERT_TRUE(results.WaitFor(101));
  gc.Close();
  EXPECT_EQ(writer.sizes(), (std::vector<size_t>{1, 100}));
  for (const Status& s : results.got) EXPECT_TRUE(s.ok()) << s.ToString();
  GroupCommitter::Stats st = gc.stats();
  EXPECT_EQ(st.groups, 2u);
  EXPECT_EQ(st.batches, 101u);
  EXPECT_EQ(st.bytes, 101u * 11);
  EXPECT_EQ(st.last_group, 100u);
  EXPECT_EQ(st.group_sizes[0], 1u);  // the lone first group
  EXPECT_EQ(st.group_sizes[7], 1u);  // 100 lies in (64, 128]
  EXPECT_EQ(gc.pending(), 0u);
}

TEST(GroupCommitter, RespectsGroupLimits) {
  GatedWriter writer;
  Results results;
  GroupCommitter gc({.max_group_batches = 10, .max_group_bytes = 1000},
                    [&](const auto& g) { return writer.Write(g); });
  gc.Submit(Ops(0), results.Add());
  ASSERT_TRUE(writer.WaitEntered(1));
  for (int i = 0; i < 25; ++i) gc.Submit(Ops(9), results.Add());   // 10 bytes each
  gc.Submit(Ops(5000), results.Add());                             // larger than a group: alone
  for (int i = 0; i < 3; ++i) gc.Submit(Ops(399), results.Add());  // two fit in 1000 bytes
  writer.Open();
  ASSERT_TRUE(results.WaitFor(30));
  EXPECT_EQ(writer.sizes(), (std::vector<size_t>{1, 10, 10, 5, 1, 2, 1}));
}

TEST(GroupCommitter, FailedWriteFailsEveryBatchOfTheGroup) {
  GatedWriter writer;
  writer.set_result(Status::IoError("fsync: injected"));
  Results results;
  GroupCommitter gc({}, [&](const auto& g) { return writer.Write(g); });
  gc.Submit(Ops(1), results.Add());
  ASSERT_TRUE(writer.WaitEntered(1));
  for (int i = 0; i < 5; ++i) gc.Submit(Ops(1), results.Add());
  writer.Open();
  ASSERT_TRUE(results.WaitFor(6));
  for (const Status& s : results.got) EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(gc.stats().batches, 0u);
  EXPECT_EQ(gc.stats().failed, 6u);
}

TEST(GroupCommitter, InvalidBatchFailsAloneAndIsNotWritten) {
  std::atomic<size_t> written{0};
  Results results;
  GroupCommitter gc({}, [&](const std::vector<const WriteOps*>& g) {
    written += g.size();
    return Status::Ok();
  });
  gc.Submit(Ops(1, Status::InvalidArgument("bad user")), results.Add());
  gc.Submit(Ops(1), results.Add());
  ASSERT_TRUE(results.WaitFor(2));
  gc.Close();
  EXPECT_EQ(results.got[0].code(), Code::kInvalidArgument);
  EXPECT_TRUE(results.got[1].ok());
  EXPECT_EQ(written.load(), 1u);
  EXPECT_EQ(gc.stats().failed, 1u);
}

TEST(GroupCommitter, CloseDrainsQueueThenRefuses) {
  GatedWriter writer;
  Results results;
  GroupCommitter gc({}, [&](const auto& g) { return writer.Write(g); });
  gc.Submit(Ops(1), results.Add());
  ASSERT_TRUE(writer.WaitEntered(1));
  for (int i = 0; i < 9; ++i) gc.Submit(Ops(1), results.Add());
  std::thread closer([&] { gc.Close(); });  // blocks until drained
  // Wait (bounded) until Close has started refusing new batches.
  Status late;
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {
    auto p = std::make_shared<std::promise<Status>>();
    std::future<Status> f = p->get_future();
    gc.Submit(Ops(1), [p](Status s) { p->set_value(std::move(s)); });
    if (f.wait_for(0s) == std::future_status::ready) {
      late = f.get();
      refused = true;
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  writer.Open();
  closer.join();
  ASSERT_TRUE(refused);
  EXPECT_EQ(late.code(), Code::kUnavailable);
  // All ten queued before Close were committed; late ones before the refusal
  // were queued before closing and are committed too.
  std::lock_guard lock(results.mu);
  ASSERT_GE(results.got.size(), 10u);
  for (const Status& s : results.got) EXPECT_TRUE(s.ok());
  EXPECT_EQ(gc.pending(), 0u);
  gc.Close();  // idempotent
}

TEST(GroupCommitter, SubmitFromCallbackWorks) {
  Results results;
  GroupCommitter gc({}, [](const auto&) { return Status::Ok(); });
  gc.Submit(Ops(1), [&](Status s) {
    EXPECT_TRUE(s.ok());
    gc.Submit(Ops(1), results.Add());
  });
  ASSERT_TRUE(results.WaitFor(1));
  EXPECT_TRUE(results.got[0].ok());
}

}  // namespace
}  // namespace porcupine::store
