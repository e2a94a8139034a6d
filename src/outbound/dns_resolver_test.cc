// The libunbound wrapper without a DNS server: timeouts, shutdown, and the
// plans that need no DNS. Answers from a real server are tested in
// tests/test_dns_route.py (an unbound on loopback).
#include "outbound/dns_resolver.h"

#include <gtest/gtest.h>

#include <chrono>

#include "outbound/route_resolve.h"

namespace porcupine::outbound {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A UDP and a TCP socket on one loopback port that never answer.
struct SilentServer {
  explicit SilentServer(asio::io_context& io)
      : udp(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        tcp(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                        udp.local_endpoint().port())) {}
  std::string Address() const { return "127.0.0.1:" + std::to_string(udp.local_endpoint().port()); }
  asio::ip::udp::socket udp;
  asio::ip::tcp::acceptor tcp;
};

TEST(DnsResolver, RefusesABadServer) {
  asio::io_context io;
  DnsOptions options;
  options.servers = {"dns.example:53"};
  EXPECT_EQ(DnsResolver::Create(io.get_executor(), options).status().code(),
            Code::kInvalidArgument);
}

TEST(DnsResolver, UnansweredQueryTimesOut) {
  asio::io_context io;
  SilentServer server(io);
  DnsOptions options;
  options.servers = {server.Address()};
  options.timeout = milliseconds(300);
  auto resolver = DnsResolver::Create(io.get_executor(), options);
  ASSERT_TRUE(resolver.ok()) << resolver.status().ToString();
  std::optional<MxAnswer> answer;
  auto start = steady_clock::now();
  steady_clock::time_point end;
  (*resolver)->QueryMx("example.test", [&](MxAnswer a) {
    answer = std::move(a);
    end = steady_clock::now();
    io.stop();
  });
  asio::steady_timer guard(io, std::chrono::seconds(10));
  guard.async_wait([&](const asio::error_code&) { io.stop(); });
  io.run();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, LookupStatus::kTimeout) << answer->error;
  EXPECT_GE(end - start, milliseconds(290));
  EXPECT_LT(end - start, milliseconds(3000));
}

TEST(DnsResolver, PlanOfAnUnansweredDomainIsTemporary) {
  asio::io_context io;
  SilentServer server(io);
  DnsOptions options;
  options.servers = {server.Address()};
  options.timeout = milliseconds(200);
  auto resolver = DnsResolver::Create(io.get_executor(), options);
  ASSERT_TRUE(resolver.ok());
  std::mt19937_64 rng(1);
  std::optional<RoutePlan> plan;
  auto done = [&](std::exception_ptr, RoutePlan p) {
    plan = std::move(p);
    io.stop();
  };
  asio::co_spawn(io, ResolveRoute(*resolver, "example.test", {}, {}, rng), std::move(done));
  io.run();
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->verdict, Verdict::kTemporary);
  EXPECT_EQ(plan->dsn, "4.4.3");
  EXPECT_NE(plan->reason.find("timeout"), std::string::npos) << plan->reason;
}

TEST(DnsResolver, DestroyingEndsPendingLookups) {
  asio::io_context io;
  SilentServer server(io);
  DnsOptions options;
  options.servers = {server.Address()};
  options.timeout = milliseconds(30000);
  auto created = DnsResolver::Create(io.get_executor(), options);
  ASSERT_TRUE(created.ok());
  std::shared_ptr<DnsResolver> resolver = std::move(*created);  // the only owner
  std::optional<AddressAnswer> answer;
  resolver->QueryAddresses("example.test", false, [&](AddressAnswer a) { answer = std::move(a); });
  asio::steady_timer later(io, milliseconds(100));
  later.async_wait([&](const asio::error_code&) { resolver.reset(); });
  auto start = steady_clock::now();
  io.run();  // returns once the resolver no longer watches its descriptor
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, LookupStatus::kServFail);
  EXPECT_EQ(answer->error, "resolver shut down");
  EXPECT_LT(steady_clock::now() - start, milliseconds(5000));
}

TEST(DnsResolver, LiteralsAndBadNamesNeedNoDns) {
  asio::io_context io;
  SilentServer server(io);
  DnsOptions options;
  options.servers = {server.Address()};
  auto resolver = DnsResolver::Create(io.get_executor(), options);
  ASSERT_TRUE(resolver.ok());
  std::mt19937_64 rng(1);
  std::vector<RoutePlan> plans;
  for (const char* d : {"[192.0.2.1]", "bad name.test"}) {
    auto done = [&](std::exception_ptr, RoutePlan p) { plans.push_back(std::move(p)); };
    asio::co_spawn(io, ResolveRoute(*resolver, d, {}, {}, rng), std::move(done));
  }
  asio::steady_timer guard(io, milliseconds(2000));
  guard.async_wait([&](const asio::error_code&) { io.stop(); });
  while (plans.size() < 2 && !io.stopped()) io.run_one();
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].verdict, Verdict::kRoute);
  EXPECT_EQ(plans[0].targets.at(0).address, "192.0.2.1");
  EXPECT_EQ(plans[1].verdict, Verdict::kPermanent);
  EXPECT_EQ(plans[1].dsn, "5.1.2");
}

}  // namespace
}  // namespace porcupine::outbound
