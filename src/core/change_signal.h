// Lets coroutines wait for "something changed" instead of polling: a
// generation counter that Notify() moves on and wakes every waiter with.
//
// A waiter reads generation() together with the state it checks (under the
// same lock that the notifier holds while it changes that state, or with the
// notifier's change ordered before its Notify), finds nothing to do, and
// waits for a generation other than the one it read: a change between the
// check and the wait is never missed.
//
// Thread-safety: every member may be called from any thread; a waiter
// resumes on its own executor.
#pragma once

#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace porcupine {

class ChangeSignal {
 public:
  ChangeSignal() = default;
  ChangeSignal(const ChangeSignal&) = delete;
  ChangeSignal& operator=(const ChangeSignal&) = delete;

  uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }

  // Moves the generation on and wakes every waiter.
  void Notify();

  // Returns once generation() != seen (at once if it already is) or
  // `timeout` has passed, or the wait was cancelled; returns the generation
  // then.
  asio::awaitable<uint64_t> WaitChange(uint64_t seen, std::chrono::milliseconds timeout);

  // Waiters registered now (for tests).
  size_t waiters() const {
    std::lock_guard lock(mu_);
    return waiters_.size();
  }

 private:
  using Channel = asio::experimental::concurrent_channel<void(asio::error_code, int)>;

  mutable std::mutex mu_;
  uint64_t generation_ = 0;                        // guarded by mu_
  std::vector<std::shared_ptr<Channel>> waiters_;  // guarded by mu_
};

}  // namespace porcupine
