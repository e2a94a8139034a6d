#include "bench/plan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "bench/bench.h"

namespace porcupine::bench {
namespace {

TEST(ParseAddressList, ListsAndErrors) {
  auto r = ParseAddressList("127.0.0.1:25, node2.example:2525 ,[::1]:110");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], (HostPort{"127.0.0.1", 25}));
  EXPECT_EQ((*r)[1], (HostPort{"node2.example", 2525}));
  EXPECT_EQ((*r)[2], (HostPort{"::1", 110}));
  EXPECT_EQ((*r)[2].ToString(), "[::1]:110");
  EXPECT_TRUE(ParseAddressList("")->empty());
  EXPECT_TRUE(ParseAddressList("  ")->empty());
  for (const char* bad : {"host", "host:", ":25", "host:0", "host:65536", "host:2x", "a:1,,b:2",
                          "a:1,", "::1:25", "[::1]", "[::1:25", "[::1]25"}) {
    EXPECT_FALSE(ParseAddressList(bad).ok()) << bad;
  }
  EXPECT_NE(ParseAddressList("a:1,b").status().message().find("\"b\""), std::string::npos);
}

TEST(ParsePids, ListAndFile) {
  EXPECT_EQ(*ParsePidList("12, 34"), (std::vector<int>{12, 34}));
  EXPECT_TRUE(ParsePidList("")->empty());
  EXPECT_FALSE(ParsePidList("12,x").ok());
  EXPECT_FALSE(ParsePidList("-3").ok());
  std::string path = testing::TempDir() + "/bench_pids_" + std::to_string(getpid());
  std::ofstream(path) << "101\n202 303\n";
  EXPECT_EQ(*ReadPidFile(path), (std::vector<int>{101, 202, 303}));
  std::ofstream(path) << "\n";
  EXPECT_FALSE(ReadPidFile(path).ok());
  std::remove(path.c_str());
  EXPECT_EQ(ReadPidFile(path).status().code(), Code::kNotFound);
}

// Parses a command line through the real option table.
BenchOptions Parse(std::vector<std::string> args) {
  CLI::App app("test");
  CLI::App* cmd = app.add_subcommand("bench");
  BenchOptions opts;
  AddOptions(cmd, opts);
  args.insert(args.begin(), "bench");
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  app.parse(args);
  return opts;
}

TEST(Options, DefaultsAndFlags) {
  BenchOptions d = Parse({});
  EXPECT_EQ(d.sessions, 16);
  EXPECT_EQ(d.readers, -1);
  EXPECT_TRUE(d.create_users);
  EXPECT_EQ(d.domain, "example.test");
  EXPECT_EQ(d.size_max, 1 << 20);
  BenchOptions o = Parse({"--admin",
                          "a:1,b:2",
                          "--smtp",
                          "s:25",
                          "--pop3",
                          "p:110",
                          "--duration",
                          "2.5",
                          "--sessions",
                          "100",
                          "--users",
                          "7",
                          "--no-create-users",
                          "--json",
                          "--rate",
                          "50",
                          "--zipf",
                          "1.2",
                          "--pids",
                          "1,2",
                          "--readers",
                          "0"});
  EXPECT_EQ(o.admin, "a:1,b:2");
  EXPECT_DOUBLE_EQ(o.duration_s, 2.5);
  EXPECT_EQ(o.sessions, 100);
  EXPECT_EQ(o.readers, 0);
  EXPECT_FALSE(o.create_users);
  EXPECT_TRUE(o.json);
  EXPECT_DOUBLE_EQ(o.rate, 50);
  EXPECT_EQ(o.pids, "1,2");
  EXPECT_FALSE(Parse({"--create-users=false"}).create_users);
  EXPECT_THROW(Parse({"--sessions", "many"}), CLI::ParseError);
}

TEST(Options, TokenFromEnvironment) {
  setenv("PORCUPINE_ADMIN_TOKEN", "s3cret", 1);
  EXPECT_EQ(Parse({}).token, "s3cret");
  EXPECT_EQ(Parse({"--token", "cli"}).token, "cli");
  unsetenv("PORCUPINE_ADMIN_TOKEN");
}

TEST(Validate, RangesAndRequiredLists) {
  BenchOptions ok;
  ok.smtp = "127.0.0.1:25";
  ok.pop3 = "127.0.0.1:110";
  ok.admin = "127.0.0.1:8080";
  EXPECT_TRUE(Validate(ok).ok());
  auto bad = [&](auto mutate) {
    BenchOptions o = ok;
    mutate(o);
    return !MakePlan(o).ok();
  };
  EXPECT_TRUE(bad([](BenchOptions& o) { o.duration_s = 0; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.sessions = 0, o.readers = 0; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.recipients = 0; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.users = 2, o.recipients = 3; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.size_mean = 2e6; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.zipf = -1; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.rate = 10, o.sessions = 0, o.readers = 1; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.smtp = ""; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.pop3 = ""; }));  // readers default to sessions/4
  EXPECT_TRUE(bad([](BenchOptions& o) { o.admin = ""; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.domain = "a b"; }));
  EXPECT_TRUE(bad([](BenchOptions& o) { o.pids = "999999999"; }));
  EXPECT_FALSE(bad([](BenchOptions& o) { o.pop3 = "", o.readers = 0; }));
  EXPECT_FALSE(bad([](BenchOptions& o) { o.admin = "", o.create_users = false; }));
  EXPECT_FALSE(bad([](BenchOptions& o) { o.pids = std::to_string(getpid()); }));
}

TEST(MakePlan, ResolvesAndNamesUsers) {
  BenchOptions o;
  o.smtp = "127.0.0.1:2525,localhost:2526";
  o.readers = 0;
  o.create_users = false;
  o.user_prefix = "load";
  auto plan = MakePlan(o);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->smtp.size(), 2u);
  EXPECT_EQ(plan->smtp[0].front().port(), 2525);
  EXPECT_EQ(plan->readers, 0);
  EXPECT_EQ(plan->UserAddress(42), "load42@example.test");
  EXPECT_FALSE(plan->nonce.empty());
}

}  // namespace
}  // namespace porcupine::bench
