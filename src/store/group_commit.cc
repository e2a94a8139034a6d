#include "store/group_commit.h"

#include <algorithm>
#include <utility>

namespace porcupine::store {

GroupCommitter::GroupCommitter(const Limits& limits, WriteGroupFn write)
    : limits_(limits), write_(std::move(write)) {
  thread_ = std::thread([this] { Run(); });
}

GroupCommitter::~GroupCommitter() { Close(); }

void GroupCommitter::Submit(WriteOps ops, Callback done) {
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      queue_.push_back({std::move(ops), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(Status::Unavailable("store: closing"));
}

void GroupCommitter::Close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (OnCommitterThread()) return;  // joining ourselves would deadlock
  std::lock_guard join(join_mu_);
  if (thread_.joinable()) thread_.join();
}

GroupCommitter::Stats GroupCommitter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t GroupCommitter::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + in_flight_;
}

void GroupCommitter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !queue_.empty() || closing_; });
    if (queue_.empty()) return;  // closing, and everything queued is committed
    std::vector<Entry> group = TakeGroup(lock);
    lock.unlock();
    CommitGroup(group);
    group.clear();  // drop callbacks (and their captures) outside the lock
    lock.lock();
  }
}

std::vector<GroupCommitter::Entry> GroupCommitter::TakeGroup(std::unique_lock<std::mutex>&) {
  std::vector<Entry> group;
  size_t bytes = 0;
  const size_t max_batches = std::max<size_t>(1, limits_.max_group_batches);
  while (!queue_.empty() && group.size() < max_batches) {
    const size_t next = queue_.front().ops.bytes;
    if (!group.empty() && bytes + next > limits_.max_group_bytes) break;
    bytes += next;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  in_flight_ = group.size();
  return group;
}

void GroupCommitter::CommitGroup(std::vector<Entry>& group) {
  std::vector<const WriteOps*> valid;
  valid.reserve(group.size());
  uint64_t bytes = 0;
  for (const Entry& e : group) {
    if (!e.ops.error.ok()) continue;
    valid.push_back(&e.ops);
    bytes += e.ops.bytes;
  }
  // A group of only invalid batches writes nothing; an empty valid batch still
  // writes (and syncs), so it acknowledges every batch before it.
  const Status written = valid.empty() ? Status::Ok() : write_(valid);
  {
    std::lock_guard lock(mu_);
    in_flight_ = 0;  // durable (or failed): no longer pending when callbacks run
    if (!valid.empty()) {
      ++stats_.groups;
      size_t bucket = 0;
      while (bucket + 1 < kGroupSizeBuckets && (size_t{1} << bucket) < valid.size()) {
        ++bucket;
      }
      ++stats_.group_sizes[bucket];
    }
    stats_.last_group = valid.size();
    if (written.ok()) {
      stats_.batches += valid.size();
      stats_.bytes += bytes;
    }
    stats_.failed += group.size() - (written.ok() ? valid.size() : 0);
  }
  for (Entry& e : group) e.done(e.ops.error.ok() ? written : e.ops.error);
}

}  // namespace porcupine::store
