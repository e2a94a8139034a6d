// End to end: the bench against a tiny in-process SMTP + POP3 + admin server
// on 127.0.0.1 port 0 that accepts everything.
#include <gtest/gtest.h>
#include <httplib.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench/bench.h"
#include "bench/engine.h"
#include "bench/plan.h"
#include "bench/report.h"
#include "bench/users.h"

namespace porcupine::bench {
namespace {

using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// Mailboxes of the fake server, touched only on its io thread.
struct FakeStore {
  std::map<std::string, std::vector<std::string>> boxes;
  std::set<std::string> message_ids;
  uint64_t delivered = 0;
  uint64_t duplicate_ids = 0;
  uint64_t long_lines = 0;
};

// Reads one CRLF line into *line; false on EOF/error.
asio::awaitable<bool> ReadLine(tcp::socket& s, std::string& buf, std::string* line) {
  while (true) {
    size_t crlf = buf.find("\r\n");
    if (crlf != std::string::npos) {
      *line = buf.substr(0, crlf);
      buf.erase(0, crlf + 2);
      co_return true;
    }
    char tmp[4096];
    auto [ec, n] = co_await s.async_read_some(asio::buffer(tmp), kTuple);
    if (ec) co_return false;
    buf.append(tmp, n);
  }
}

asio::awaitable<void> Send(tcp::socket& s, std::string text) {
  co_await asio::async_write(s, asio::buffer(text), kTuple);
}

std::string HeaderValue(const std::string& msg, const std::string& name) {
  size_t p = msg.find("\r\n" + name + ": ");
  if (p == std::string::npos) return "";
  p += name.size() + 4;
  return msg.substr(p, msg.find("\r\n", p) - p);
}

asio::awaitable<void> SmtpSession(tcp::socket s, FakeStore* store) {
  std::string buf, line, msg;
  std::vector<std::string> rcpts;
  co_await Send(s, "220 fake ESMTP\r\n");
  while (co_await ReadLine(s, buf, &line)) {
    std::string verb = line.substr(0, 4);
    if (verb == "EHLO") {
      co_await Send(s, "250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    } else if (verb == "MAIL" || verb == "RSET") {
      rcpts.clear();
      co_await Send(s, "250 2.1.0 Ok\r\n");
    } else if (verb == "RCPT") {
      rcpts.push_back(line.substr(9, line.find('>') - 9));
      co_await Send(s, "250 2.1.5 Ok\r\n");
    } else if (verb == "DATA") {
      co_await Send(s, "354 go\r\n");
      msg.clear();
      while (co_await ReadLine(s, buf, &line) && line != ".") {
        if (line.starts_with(".")) line.erase(0, 1);
        if (line.size() > 78) ++store->long_lines;
        msg += line + "\r\n";
      }
      if (!store->message_ids.insert(HeaderValue(msg, "Message-ID")).second) {
        ++store->duplicate_ids;
      }
      for (const std::string& r : rcpts) store->boxes[r].push_back(msg);
      ++store->delivered;
      co_await Send(s, "250 2.0.0 Ok: queued\r\n");
    } else if (verb == "QUIT") {
      co_await Send(s, "221 bye\r\n");
      co_return;
    } else {
      co_await Send(s, "502 what\r\n");
    }
  }
}

asio::awaitable<void> Pop3Session(tcp::socket s, FakeStore* store) {
  std::string buf, line, user;
  std::set<size_t> deleted;
  std::vector<std::string> snapshot;
  co_await Send(s, "+OK fake POP3\r\n");
  while (co_await ReadLine(s, buf, &line)) {
    std::string verb = line.substr(0, 4);
    size_t n = line.size() > 5 ? std::strtoul(line.c_str() + 5, nullptr, 10) : 0;
    if (verb == "USER") {
      user = line.substr(5);
      co_await Send(s, "+OK\r\n");
    } else if (verb == "PASS") {
      snapshot = store->boxes[user];
      co_await Send(s, "+OK logged in\r\n");
    } else if (verb == "STAT") {
      co_await Send(s, "+OK " + std::to_string(snapshot.size()) + " 0\r\n");
    } else if (verb == "LIST") {
      std::string out = "+OK\r\n";
      for (size_t i = 0; i < snapshot.size(); ++i) {
        out += std::to_string(i + 1) + " " + std::to_string(snapshot[i].size()) + "\r\n";
      }
      co_await Send(s, out + ".\r\n");
    } else if (verb == "RETR" && n >= 1 && n <= snapshot.size()) {
      std::string stuffed = snapshot[n - 1];  // every line ends in CRLF
      std::string out = "+OK\r\n";
      size_t pos = 0;
      while (pos < stuffed.size()) {
        size_t e = stuffed.find("\r\n", pos) + 2;
        if (stuffed[pos] == '.') out += ".";
        out += stuffed.substr(pos, e - pos);
        pos = e;
      }
      co_await Send(s, out + ".\r\n");
    } else if (verb == "DELE" && n >= 1 && n <= snapshot.size()) {
      deleted.insert(n - 1);
      co_await Send(s, "+OK\r\n");
    } else if (verb == "QUIT") {
      auto& box = store->boxes[user];
      // Delete by content from the live box (new mail may have arrived).
      for (size_t i : deleted) {
        auto it = std::find(box.begin(), box.end(), snapshot[i]);
        if (it != box.end()) box.erase(it);
      }
      co_await Send(s, "+OK bye\r\n");
      co_return;
    } else {
      co_await Send(s, "-ERR what\r\n");
    }
  }
}

template <typename SessionFn>
asio::awaitable<void> Accept(tcp::acceptor* a, FakeStore* store, SessionFn fn) {
  while (true) {
    auto [ec, s] = co_await a->async_accept(kTuple);
    if (ec) co_return;
    s.set_option(tcp::no_delay(true), ec);  // replies are small separate writes
    asio::co_spawn(a->get_executor(), fn(std::move(s), store), asio::detached);
  }
}

// SMTP and POP3 on one io thread plus an httplib admin API.
class FakeServer {
 public:
  // `silent`: accept connections but never answer (for timeouts).
  explicit FakeServer(bool silent = false)
      : smtp_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        pop3_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    if (silent) {
      asio::co_spawn(io_, Accept(&smtp_, &store_, Silent), asio::detached);
    } else {
      asio::co_spawn(io_, Accept(&smtp_, &store_, SmtpSession), asio::detached);
    }
    asio::co_spawn(io_, Accept(&pop3_, &store_, Pop3Session), asio::detached);
    io_thread_ = std::thread([this] { io_.run(); });
    admin_.Post("/v1/users", [this](const httplib::Request& req, httplib::Response& res) {
      auto body = nlohmann::json::parse(req.body);
      std::lock_guard<std::mutex> lock(mu_);
      bool fresh = users_.insert(body["address"].get<std::string>()).second;
      res.status = fresh ? 201 : 409;
      res.set_content("{}", "application/json");
    });
    admin_port_ = admin_.bind_to_any_port("127.0.0.1");
    admin_thread_ = std::thread([this] { admin_.listen_after_bind(); });
  }
  ~FakeServer() {
    admin_.stop();
    admin_thread_.join();
    io_.stop();
    io_thread_.join();
  }

  std::string smtp() const { return "127.0.0.1:" + std::to_string(smtp_.local_endpoint().port()); }
  std::string pop3() const { return "127.0.0.1:" + std::to_string(pop3_.local_endpoint().port()); }
  std::string admin() const { return "127.0.0.1:" + std::to_string(admin_port_); }
  size_t users() {
    std::lock_guard<std::mutex> lock(mu_);
    return users_.size();
  }
  // Runs fn on the io thread (the store is not thread-safe) and waits.
  template <typename Fn>
  void Inspect(Fn fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn(store_);
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  static asio::awaitable<void> Silent(tcp::socket s, FakeStore*) {
    char tmp[256];
    while (true) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(tmp), kTuple);
      if (ec) co_return;
    }
  }

  asio::io_context io_;
  tcp::acceptor smtp_;
  tcp::acceptor pop3_;
  FakeStore store_;
  std::thread io_thread_;
  httplib::Server admin_;
  int admin_port_ = 0;
  std::thread admin_thread_;
  std::mutex mu_;
  std::set<std::string> users_;
};

BenchOptions Options(const FakeServer& server) {
  BenchOptions o;
  o.admin = server.admin();
  o.smtp = server.smtp();
  o.pop3 = server.pop3();
  o.users = 20;
  o.sessions = 4;
  o.readers = 2;
  o.threads = 2;
  o.setup_threads = 4;
  o.drain_s = 1;
  o.poll_ms = 20;
  o.size_mean = 2000;
  o.size_max = 20000;
  o.recipients = 2;
  o.zipf = 0.8;
  return o;
}

TEST(EndToEnd, ClosedLoopDeliversAndRetrievesWithoutErrors) {
  FakeServer server;
  BenchOptions o = Options(server);
  o.duration_s = 1.5;
  o.warmup_s = 0.3;
  o.json = true;
  testing::internal::CaptureStdout();
  auto t0 = std::chrono::steady_clock::now();
  int rc = bench::Run(o);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0) << out;
  EXPECT_LT(took, o.warmup_s + o.duration_s + o.drain_s + 1.0);
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one JSON line: " << out;
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_GT(j["delivered"].get<uint64_t>(), 0u);
  EXPECT_GT(j["delivered_per_s"].get<double>(), 0);
  EXPECT_GT(j["retrieved"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << j["error_samples"].dump();
  EXPECT_EQ(j["recipients"].get<uint64_t>(), 2 * j["delivered"].get<uint64_t>());
  EXPECT_NEAR(j["duration_s"].get<double>(), 1.5, 0.01);
  EXPECT_GT(j["p99_ms"].get<double>(), 0);
  EXPECT_GE(j["p99_ms"].get<double>(), j["p50_ms"].get<double>());
  EXPECT_TRUE(j["cpu_s_per_msg"].is_null());  // no --pids
  EXPECT_GE(j["bench_cpu_s"].get<double>(), 0);
  EXPECT_EQ(j["latency_ms"]["smtp_deliver"]["count"], j["delivered"]);
  EXPECT_GT(j["latency_ms"]["pop3_retr"]["count"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["users_created"].get<uint64_t>(), 20u);
  EXPECT_EQ(server.users(), 20u);
  for (const char* k :
       {"connect", "timeout", "disconnect", "protocol", "smtp_4xx", "smtp_5xx", "pop3_err"}) {
    EXPECT_EQ(j["errors_by_kind"][k], 0) << k;
  }
  server.Inspect([](FakeStore& s) {
    EXPECT_GT(s.delivered, 0u);
    EXPECT_EQ(s.duplicate_ids, 0u);
    EXPECT_EQ(s.long_lines, 0u);
  });
  // A second run finds the users already there.
  o.duration_s = 0.3;
  o.warmup_s = 0;
  testing::internal::CaptureStdout();
  ASSERT_EQ(bench::Run(o), 0);
  j = nlohmann::json::parse(testing::internal::GetCapturedStdout());
  EXPECT_EQ(j["users_existed"].get<uint64_t>(), 20u);
  EXPECT_EQ(j["users_created"].get<uint64_t>(), 0u);
}

TEST(EndToEnd, OpenLoopHoldsTheTargetRate) {
  FakeServer server;
  BenchOptions o = Options(server);
  o.create_users = false;
  o.readers = 0;
  o.rate = 300;
  o.duration_s = 1.0;
  auto plan = MakePlan(o);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  RunTotals t = RunLoad(*plan, LoadHooks{});
  EXPECT_EQ(t.errors, 0u);
  // Poisson arrivals over 1 s at 300/s: sd ~17. The generator starts every
  // arrival on time (no late starts) and never more than the rate; how many
  // of them complete inside the window depends on how fast the in-process
  // fake server answers, which on a loaded machine under ASan was 185.
  EXPECT_LE(static_cast<double>(t.delivered), 300 + 90);
  EXPECT_GE(t.delivered, 100u);
  EXPECT_EQ(t.late_starts, 0u);
  std::string table = ReportTable(*plan, UserSetup{}, t);
  EXPECT_NE(table.find("open loop at 300.0 msg/s"), std::string::npos) << table;
  EXPECT_NE(table.find("smtp_deliver"), std::string::npos);
}

TEST(EndToEnd, WithoutPipeliningStillDelivers) {
  FakeServer server;
  BenchOptions o = Options(server);
  o.create_users = false;
  o.readers = 0;
  o.pipelining = false;
  o.duration_s = 0.3;
  auto plan = MakePlan(o);
  ASSERT_TRUE(plan.ok());
  RunTotals t = RunLoad(*plan, LoadHooks{});
  EXPECT_GT(t.delivered, 0u);
  EXPECT_EQ(t.errors, 0u);
  EXPECT_EQ(t.recipients, 2 * t.delivered);
}

TEST(EndToEnd, InterruptEndsTheWindowEarly) {
  FakeServer server;
  BenchOptions o = Options(server);
  o.create_users = false;
  o.duration_s = 30;
  auto plan = MakePlan(o);
  ASSERT_TRUE(plan.ok());
  std::atomic<int> interrupts{0};
  LoadHooks hooks;
  hooks.interrupts = &interrupts;
  std::thread ctrl_c([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    interrupts = 1;
  });
  auto t0 = std::chrono::steady_clock::now();
  RunTotals t = RunLoad(*plan, hooks);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ctrl_c.join();
  EXPECT_TRUE(t.interrupted);
  EXPECT_LT(took, 0.4 + o.drain_s + 0.5);
  // The window opens after the connections are made, which takes a variable
  // part of the 400 ms on a loaded machine (0.31 s was seen under ASan): it
  // ran, and it ended at the interrupt, not at its 30 s.
  EXPECT_GT(t.window_s, 0.1);
  EXPECT_LT(t.window_s, 0.8);
  EXPECT_GT(t.delivered, 0u);
  EXPECT_EQ(t.errors, 0u);
}

TEST(EndToEnd, SilentServerTimesOutAndTheRunStaysBounded) {
  FakeServer server(/*silent=*/true);
  BenchOptions o = Options(server);
  o.create_users = false;
  o.readers = 0;
  o.duration_s = 0.8;
  o.timeout_s = 0.2;
  o.pids = std::to_string(getpid());  // CPU accounting of "a node"
  auto plan = MakePlan(o);
  ASSERT_TRUE(plan.ok());
  auto t0 = std::chrono::steady_clock::now();
  RunTotals t = RunLoad(*plan, LoadHooks{});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, o.duration_s + o.drain_s + 0.5);
  EXPECT_EQ(t.delivered, 0u);
  EXPECT_GT(t.errors_by_kind[static_cast<size_t>(ErrorKind::kTimeout)], 0u);
  EXPECT_EQ(t.errors, t.errors_by_kind[static_cast<size_t>(ErrorKind::kTimeout)]);
  ASSERT_FALSE(t.error_samples.empty());
  EXPECT_NE(t.error_samples[0].find("timeout"), std::string::npos);
  EXPECT_TRUE(t.node_cpu_s.has_value());
  nlohmann::json j = ReportJson(*plan, UserSetup{}, t);
  EXPECT_TRUE(j["cpu_s_per_msg"].is_null());  // nothing delivered
  EXPECT_TRUE(j["p50_ms"].is_null());
}

TEST(EndToEnd, NothingListeningCountsConnectErrorsAndFails) {
  // Bind and close a port so nothing listens on it.
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string addr = "127.0.0.1:" + std::to_string(a.local_endpoint().port());
  a.close();
  BenchOptions o;
  o.smtp = addr;
  o.readers = 0;
  o.sessions = 2;
  o.create_users = false;
  o.duration_s = 0.3;
  o.drain_s = 0.2;
  o.json = true;
  testing::internal::CaptureStdout();
  EXPECT_EQ(bench::Run(o), 1);
  auto j = nlohmann::json::parse(testing::internal::GetCapturedStdout());
  EXPECT_GT(j["errors_by_kind"]["connect"].get<uint64_t>(), 0u);
  // Backoff keeps a dead node from being hammered: well under 100 attempts.
  EXPECT_LT(j["errors"].get<uint64_t>(), 100u);
}

TEST(EndToEnd, UnreachableAdminFailsSetup) {
  BenchOptions o;
  o.admin = "127.0.0.1:1";
  o.smtp = "127.0.0.1:1";
  o.readers = 0;
  o.users = 3;
  o.duration_s = 0.1;
  EXPECT_EQ(bench::Run(o), 1);
  o.duration_s = -1;
  EXPECT_EQ(bench::Run(o), 2);
}

}  // namespace
}  // namespace porcupine::bench
