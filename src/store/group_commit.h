// Group commit (DESIGN.md §5): one committer thread turns every batch queued
// since its last round into one write with one WAL sync, then runs the
// callbacks. Internal to src/store; Store is the public face.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"
#include "store/write_ops.h"

namespace porcupine::store {

class GroupCommitter {
 public:
  using Callback = std::function<void(Status)>;
  // Writes the batches of one group as one atomic, durable write and returns
  // its status. Called on the committer thread only, never concurrently.
  using WriteGroupFn = std::function<Status(const std::vector<const WriteOps*>&)>;

  struct Limits {
    size_t max_group_batches = 4096;       // batches per group at most (>= 1)
    size_t max_group_bytes = 64ull << 20;  // bytes per group at most, unless one batch is larger
  };

  static constexpr size_t kGroupSizeBuckets = 14;  // 1, 2, 4, ... 4096, more
  struct Stats {
    uint64_t groups = 0;      // group writes attempted
    uint64_t batches = 0;     // batches committed successfully
    uint64_t bytes = 0;       // bytes of batches committed successfully
    uint64_t failed = 0;      // batches whose callback got an error
    uint64_t last_group = 0;  // batches in the latest group write
    // Group writes by size: [0] size 1, [i] sizes in (2^(i-1), 2^i], last: larger.
    std::array<uint64_t, kGroupSizeBuckets> group_sizes{};
  };

  // Starts the committer thread.
  GroupCommitter(const Limits& limits, WriteGroupFn write);
  ~GroupCommitter();  // Close()
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Queues `ops`; `done` runs on the committer thread once the group that
  // holds them was written (OK) or failed (the write's error, or ops.error
  // when the batch was invalid; an invalid batch never fails its group).
  // Never does I/O. After Close() began, `done` runs at once on the calling
  // thread with Unavailable.
  void Submit(WriteOps ops, Callback done);

  // Stops accepting batches, commits everything queued, joins the thread.
  // Idempotent. Called from a callback (the committer thread) it only stops
  // accepting; the thread ends after the current group.
  void Close();

  Stats stats() const;
  // Batches queued or being written (not counting those whose callbacks are
  // already running).
  size_t pending() const;
  bool OnCommitterThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Entry {
    WriteOps ops;
    Callback done;
  };

  void Run();
  std::vector<Entry> TakeGroup(std::unique_lock<std::mutex>& lock);
  void CommitGroup(std::vector<Entry>& group);

  const Limits limits_;
  const WriteGroupFn write_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;  // guarded by mu_
  size_t in_flight_ = 0;     // guarded by mu_
  bool closing_ = false;     // guarded by mu_
  Stats stats_;              // guarded by mu_

  std::mutex join_mu_;  // serializes joins of thread_
  std::thread thread_;
};

}  // namespace porcupine::store
