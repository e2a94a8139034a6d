#include "core/change_signal.h"

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

namespace porcupine {

void ChangeSignal::Notify() {
  std::vector<std::shared_ptr<Channel>> wake;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    wake.swap(waiters_);
  }
  // Each channel holds one message: a waiter that has not started receiving
  // yet finds it there.
  for (const auto& ch : wake) ch->try_send(asio::error_code{}, 0);
}

asio::awaitable<uint64_t> ChangeSignal::WaitChange(uint64_t seen,
                                                   std::chrono::milliseconds timeout) {
  using asio::experimental::as_tuple;
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  auto ch = std::make_shared<Channel>(ex, 1);
  {
    std::lock_guard lock(mu_);
    if (generation_ != seen) co_return generation_;
    waiters_.push_back(ch);
  }
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  co_await (ch->async_receive(as_tuple(asio::use_awaitable)) ||
            timer.async_wait(as_tuple(asio::use_awaitable)));
  std::lock_guard lock(mu_);
  // Gone already when a Notify took it.
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), ch), waiters_.end());
  co_return generation_;
}

}  // namespace porcupine
