#include "core/change_signal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace porcupine {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST(ChangeSignal, ReturnsAtOnceWhenTheGenerationMovedBeforeTheWait) {
  ChangeSignal s;
  const uint64_t seen = s.generation();
  s.Notify();  // between the check and the wait
  asio::io_context io;
  uint64_t got = 0;
  const auto start = steady_clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> { got = co_await s.WaitChange(seen, milliseconds(10000)); },
      asio::detached);
  io.run();
  EXPECT_EQ(got, seen + 1);
  EXPECT_LT(steady_clock::now() - start, milliseconds(1000));
  EXPECT_EQ(s.waiters(), 0u);
}

TEST(ChangeSignal, NotifyFromAnotherThreadWakesEveryWaiter) {
  ChangeSignal s;
  asio::io_context io;
  const uint64_t seen = s.generation();
  std::atomic<int> woken{0};
  constexpr int kWaiters = 100;
  for (int i = 0; i < kWaiters; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          if (co_await s.WaitChange(seen, milliseconds(20000)) == seen + 1) woken.fetch_add(1);
        },
        asio::detached);
  }
  const auto start = steady_clock::now();
  std::thread notifier([&] {
    // Until every waiter is registered (bounded).
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (s.waiters() < kWaiters && steady_clock::now() < deadline) std::this_thread::yield();
    s.Notify();
  });
  io.run();
  notifier.join();
  EXPECT_EQ(woken.load(), kWaiters);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(s.waiters(), 0u);
}

TEST(ChangeSignal, TimesOutWithoutAChangeAndForgetsTheWaiter) {
  ChangeSignal s;
  asio::io_context io;
  uint64_t got = 99;
  const auto start = steady_clock::now();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await s.WaitChange(0, milliseconds(50)); },
      asio::detached);
  io.run();
  EXPECT_EQ(got, 0u);
  EXPECT_GE(steady_clock::now() - start, milliseconds(50));
  EXPECT_EQ(s.waiters(), 0u);
  s.Notify();  // nobody left to wake
  EXPECT_EQ(s.generation(), 1u);
}

TEST(ChangeSignal, WaitersOnSeveralThreads) {
  ChangeSignal s;
  asio::io_context io;
  std::atomic<int> rounds{0};
  constexpr int kRounds = 200;
  // Two coroutines take turns: each waits for the other's notify.
  auto player = [&](int parity) -> asio::awaitable<void> {
    for (;;) {
      uint64_t g = s.generation();
      while (g < kRounds && g % 2 != static_cast<uint64_t>(parity)) {
        g = co_await s.WaitChange(g, milliseconds(5000));
      }
      if (g >= kRounds) co_return;
      rounds.fetch_add(1);
      s.Notify();
    }
  };
  asio::co_spawn(io, player(0), asio::detached);
  asio::co_spawn(io, player(1), asio::detached);
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  EXPECT_EQ(rounds.load(), kRounds);
}

}  // namespace
}  // namespace porcupine
