#include "net/listener.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace porcupine::net {
namespace {

using Refusal = ConnectionRegistry::Refusal;

TEST(ConnectionRegistry, LimitsEachClientKeyAndTheNode) {
  ConnectionRegistry r(/*max_connections=*/5, /*max_per_client=*/2);
  Refusal why = Refusal::kNone;
  std::vector<std::unique_ptr<ConnectionRegistry::Ticket>> held;
  held.push_back(r.Enter([] {}, "192.0.2.7", &why));
  held.push_back(r.Enter([] {}, "192.0.2.7", &why));
  ASSERT_TRUE(held[0] && held[1]);
  EXPECT_EQ(why, Refusal::kNone);
  EXPECT_EQ(r.Enter([] {}, "192.0.2.7", &why), nullptr);
  EXPECT_EQ(why, Refusal::kClientFull);
  EXPECT_EQ(r.live_of("192.0.2.7"), 2u);
  // Another address, and an exempt connection (""), are not affected.
  held.push_back(r.Enter([] {}, "2001:db8:1:2::/64", &why));
  held.push_back(r.Enter([] {}, "", &why));
  held.push_back(r.Enter([] {}, "", &why));
  ASSERT_TRUE(held[2] && held[3] && held[4]);
  EXPECT_EQ(r.live_of(""), 0u);
  // The node's limit comes first, whoever asks.
  EXPECT_EQ(r.Enter([] {}, "198.51.100.1", &why), nullptr);
  EXPECT_EQ(why, Refusal::kNodeFull);
  EXPECT_EQ(r.live(), 5u);
  // A closed connection gives its address's slot back.
  held[0].reset();
  EXPECT_EQ(r.live_of("192.0.2.7"), 1u);
  auto again = r.Enter([] {}, "192.0.2.7", &why);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(r.live_of("192.0.2.7"), 2u);
  again.reset();
  held[1].reset();
  EXPECT_EQ(r.live_of("192.0.2.7"), 0u);
}

TEST(ConnectionRegistry, ZeroMeansNoLimitPerClient) {
  ConnectionRegistry r(/*max_connections=*/3, /*max_per_client=*/0);
  std::vector<std::unique_ptr<ConnectionRegistry::Ticket>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(r.Enter([] {}, "192.0.2.7"));
    ASSERT_NE(held.back(), nullptr) << i;
  }
  Refusal why = Refusal::kNone;
  EXPECT_EQ(r.Enter([] {}, "192.0.2.7", &why), nullptr);
  EXPECT_EQ(why, Refusal::kNodeFull);
}

TEST(ConnectionRegistry, ShutdownInterruptsEveryConnection) {
  ConnectionRegistry r(10, 1);
  int interrupted = 0;
  auto a = r.Enter([&] { ++interrupted; }, "192.0.2.7");
  auto b = r.Enter([&] { ++interrupted; }, "");
  r.Shutdown();
  EXPECT_EQ(interrupted, 2);
  // A connection that enters after shutdown is interrupted at once.
  auto c = r.Enter([&] { ++interrupted; }, "198.51.100.1");
  EXPECT_EQ(interrupted, 3);
}

// Shutdown waits for the sessions to end, woken by the last one rather than
// polling, and gives up at its deadline.
TEST(ConnectionRegistry, WaitDrainedWakesWhenTheLastConnectionEnds) {
  using std::chrono::milliseconds;
  ConnectionRegistry r(10);
  auto a = r.Enter([] {});
  auto b = r.Enter([] {});
  asio::io_context io;
  size_t left = 99;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { left = co_await r.WaitDrained(milliseconds(20000)); },
      asio::detached);
  std::thread ender([&] {
    a.reset();
    std::this_thread::sleep_for(milliseconds(20));  // the waiter is parked by now, or not
    b.reset();
  });
  io.run();
  ender.join();
  EXPECT_EQ(left, 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  auto c = r.Enter([] {});
  io.restart();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { left = co_await r.WaitDrained(milliseconds(50)); },
      asio::detached);
  io.run();
  EXPECT_EQ(left, 1u);
}

}  // namespace
}  // namespace porcupine::net
