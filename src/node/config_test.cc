#include "node/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace porcupine::node {
namespace {

const char* kMinimal = R"(
[node]
data_dir = "/tmp/x"
[mail]
domains = ["Example.TEST"]
)";

// kMinimal followed by `extra`, parsed; a parse error fails the test (and
// the default Config is returned).
Config Parse(const std::string& extra = "") {
  Result<Config> c = ParseConfig(std::string(kMinimal) + extra);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : Config{};
}

// The error of kMinimal followed by `extra`, or "ok" when it parses.
std::string ErrorFor(const std::string& extra) {
  Result<Config> c = ParseConfig(std::string(kMinimal) + extra);
  return c.ok() ? std::string("ok") : c.status().message();
}

TEST(Config, MinimalFileGetsDefaults) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node.data_dir, "/tmp/x");
  EXPECT_FALSE(c->node.name.empty());
  EXPECT_EQ(c->mail.hostname, c->node.name);
  EXPECT_EQ(c->mail.domains, std::vector<std::string>{"example.test"});
  EXPECT_EQ(c->cluster.buckets, 256);
  EXPECT_EQ(c->cluster.replication, 2);
  EXPECT_EQ(c->smtp.max_recipients, 100u);
  EXPECT_EQ(c->server.idle_timeout, std::chrono::seconds(300));
}

TEST(Config, ReadsEveryKindOfValue) {
  Result<Config> c = ParseConfig(std::string(kMinimal) + R"(
[listen]
smtp = "127.0.0.1:0"
imap = ""
[cluster]
seeds = ["10.0.0.1:7000", "10.0.0.2:7000"]
buckets = 64
[limits]
smtp_max_message_bytes = 1048576
smtp_tarpit_delay_ms = 250
[server]
idle_timeout_s = 30
[store]
sync = false
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen.smtp, "127.0.0.1:0");
  EXPECT_EQ(c->cluster.seeds.size(), 2u);
  EXPECT_EQ(c->cluster.buckets, 64);
  EXPECT_EQ(c->smtp.max_message_bytes, 1048576u);
  EXPECT_EQ(c->smtp.tarpit_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(c->server.idle_timeout, std::chrono::seconds(30));
  EXPECT_FALSE(c->store.sync);
}

TEST(Config, ReadsTheLoginThrottleAndCache) {
  const Config c = Parse(R"(
[auth]
failures_before_delay = 2
delay_initial_ms = 50
delay_max_ms = 400
failures_before_lockout = 6
lockout_s = 3
failure_memory_s = 60
trusted_login_s = 600
max_tracked_addresses = 10
max_tracked_accounts = 20
max_trusted_logins = 30
login_cache_entries = 0
login_cache_ttl_s = 5
)");
  const LoginThrottleOptions& t = c.auth.throttle;
  EXPECT_EQ(t.failures_before_delay, 2);
  EXPECT_EQ(t.delay_initial, std::chrono::milliseconds(50));
  EXPECT_EQ(t.delay_max, std::chrono::milliseconds(400));
  EXPECT_EQ(t.failures_before_lockout, 6);
  EXPECT_EQ(t.lockout, std::chrono::seconds(3));
  EXPECT_EQ(t.forget_after, std::chrono::seconds(60));
  EXPECT_EQ(t.trust, std::chrono::seconds(600));
  EXPECT_EQ(t.max_addresses, 10u);
  EXPECT_EQ(t.max_accounts, 20u);
  EXPECT_EQ(t.max_trusted, 30u);
  EXPECT_EQ(c.auth.login_cache_entries, 0u);
  EXPECT_EQ(c.auth.login_cache_ttl, std::chrono::seconds(5));
}

TEST(Config, ReadsTls) {
  const Config none = Parse();
  EXPECT_FALSE(none.tls.enabled());
  EXPECT_EQ(none.tls.min_version, "1.2");
  EXPECT_EQ(none.tls.handshake_timeout, std::chrono::seconds(10));
  EXPECT_EQ(none.listen.imaps, "");
  const Config c = Parse(R"(
[listen]
imaps = "127.0.0.1:0"
submission = "127.0.0.1:0"
[tls]
cert_file = "/etc/mx.pem"
key_file = "/etc/mx.key"
min_version = "1.3"
handshake_timeout_s = 3
[[tls.certificates]]
domains = ["b.test", "*.c.test"]
cert_file = "/etc/b.pem"
key_file = "/etc/b.key"
[[tls.certificates]]
domains = ["d.test"]
cert_file = "/etc/d.pem"
key_file = "/etc/d.key"
)");
  EXPECT_TRUE(c.tls.enabled());
  EXPECT_EQ(c.listen.imaps, "127.0.0.1:0");
  EXPECT_EQ(c.tls.min_version, "1.3");
  EXPECT_EQ(c.tls.handshake_timeout, std::chrono::seconds(3));
  ASSERT_EQ(c.tls.certificates.size(), 2u);
  EXPECT_EQ(c.tls.certificates[0].domains, (std::vector<std::string>{"b.test", "*.c.test"}));
  EXPECT_EQ(c.tls.certificates[1].key_file, "/etc/d.key");
  // Certificates alone are enough (the first is the default).
  EXPECT_EQ(ErrorFor(R"(
[listen]
pop3s = "127.0.0.1:0"
[[tls.certificates]]
domains = ["b.test"]
cert_file = "/etc/b.pem"
key_file = "/etc/b.key"
)"),
            "ok");
}

TEST(Config, ErrorsNameTheKey) {
  struct Bad {
    std::string extra;
    std::string want;  // prefix of the error message
  };
  const std::vector<Bad> cases = {
      {"[bogus]\nx = 1\n", "bogus: unknown section"},
      {"[limits]\nsmtp_max_recipientz = 5\n", "limits.smtp_max_recipientz: unknown key"},
      {"[limits]\nsmtp_max_recipients = 0\n", "limits.smtp_max_recipients: must be at least 1"},
      {"[limits]\nsmtp_max_recipients = \"ten\"\n",
       "limits.smtp_max_recipients: must be an integer"},
      {"[listen]\nsmtp = \"nonsense\"\n", "listen.smtp: must be host:port"},
      {"[listen]\nsmtp = \"1.2.3.4:99999\"\n", "listen.smtp: must be host:port with a port"},
      {"[listen]\nimap = \"127.0.0.1\"\n", "listen.imap: must be host:port"},
      {"[limits]\nimap_hard_error_limit = 5\n", "limits.imap_hard_error_limit: must be larger"},
      {"[limits]\nimap_max_literal = 104857600\n", "cluster.max_rpc_message_mib: must exceed"},
      {"[cluster]\nbuckets = 0\n", "cluster.buckets: must be from 1 to 65535"},
      {"[log]\nlevel = \"loud\"\n", "log.level: must be one of"},
      {"[store]\nsync = 1\n", "store.sync: must be true or false"},
      {"[limits]\nsmtp_hard_error_limit = 5\n", "limits.smtp_hard_error_limit: must be larger"},
      {"[auth]\nlockout_s = 7200\n", "auth.failure_memory_s: must be at least auth.lockout_s"},
      {"[auth]\ndelay_initial_ms = 20000\n", "auth.delay_max_ms: must be at least"},
      {"[auth]\nfailures_before_lockout = 0\n", "auth.failures_before_lockout: must be at least 1"},
      {"[auth]\nmax_tracked_accounts = 0\n", "auth.max_tracked_accounts: must be at least 1"},
      {"[tls]\nmin_version = \"1.1\"\n", "tls.min_version: must be \"1.2\" or \"1.3\""},
      {"[tls]\ncert_file = \"/c.pem\"\n", "tls.key_file: cert_file and key_file go together"},
      {"[listen]\nimaps = \"127.0.0.1:0\"\n", "listen.imaps: needs a certificate"},
      {"[listen]\npop3s = \"127.0.0.1:0\"\n", "listen.pop3s: needs a certificate"},
      {"[listen]\nsubmissions = \"127.0.0.1:0\"\n", "listen.submissions: needs a certificate"},
      {"[[tls.certificates]]\ndomains = [\"a.test\"]\ncert_file = \"/a.pem\"\n",
       "tls.certificates: [0]: needs domains, cert_file and key_file"},
      {"[[tls.certificates]]\ndomain = [\"a.test\"]\n",
       "tls.certificates: [0].domain: unknown key"},
      {"[tls]\ncertificates = \"x\"\n", "tls.certificates: must be an array of tables"},
  };
  for (const Bad& b : cases) {
    EXPECT_THAT(ErrorFor(b.extra), ::testing::StartsWith(b.want)) << b.extra;
  }
  EXPECT_FALSE(ParseConfig("[mail]\ndomains=[\"x\"]\n").ok());  // no data_dir
  EXPECT_FALSE(ParseConfig("[node]\ndata_dir=\"/x\"\n").ok());  // no domains
  Result<Config> syntax = ParseConfig("[node\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("line 1"), std::string::npos);
}

TEST(Config, SmtpDataMemoryFitsTheLargestMessageTwice) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->node_limits.message_memory_bytes, 512ull << 20);
  c = ParseConfig(std::string(kMinimal) +
                  "[limits]\nsmtp_max_message_bytes = 10485760\n"
                  "smtp_data_memory_bytes = 22020096\n");  // 2 x 10 MiB + 1 MiB
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_limits.message_memory_bytes, 22020096u);
  c = ParseConfig(std::string(kMinimal) +
                  "[limits]\nsmtp_max_message_bytes = 10485760\n"
                  "smtp_data_memory_bytes = 22020095\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("limits.message_memory_bytes: must be at least twice", 0),
            0u)
      << c.status().message();
  c = ParseConfig(std::string(kMinimal) + "[limits]\nsmtp_data_memory_bytes = 1000\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("limits.smtp_data_memory_bytes: must be at least", 0), 0u);
}

// The budget is shared by SMTP DATA and IMAP literals under a new name; the
// old name is still read, both at once are refused, and only the new one is
// printed.
TEST(Config, MessageMemoryKeyAndItsOldName) {
  Result<Config> c = ParseConfig(std::string(kMinimal) +
                                 "[limits]\nsmtp_max_message_bytes = 10485760\n"
                                 "message_memory_bytes = 33554432\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_limits.message_memory_bytes, 33554432u);
  // An IMAP literal larger than the budget could never be taken: lowered.
  EXPECT_EQ(c->imap.parser.max_literal, 31u << 20);  // the budget less 1 MiB
  EXPECT_EQ(c->imap.max_message_size, 31u << 20);
  c = ParseConfig(std::string(kMinimal) +
                  "[limits]\nmessage_memory_bytes = 33554432\n"
                  "smtp_data_memory_bytes = 33554432\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "limits.smtp_data_memory_bytes: is the old name of limits.message_memory_bytes; set "
            "only one");
  c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->imap.parser.max_literal, 50u << 20);  // the default fits the default budget
  const std::string printed = DefaultConfigToml();
  EXPECT_NE(printed.find("message_memory_bytes = 536870912"), std::string::npos);
  EXPECT_EQ(printed.find("smtp_data_memory_bytes"), std::string::npos);
}

TEST(Config, ConnectionAndAuthLineLimits) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->node_limits.max_connections_per_address, 50u);
  EXPECT_TRUE(c->node_limits.address_limit_exempts_loopback);
  EXPECT_EQ(c->smtp.max_auth_line, 12288u);
  EXPECT_EQ(c->smtp.max_command_line, 512u);
  EXPECT_EQ(c->admin.limits.health_connections, 4u);
  c = ParseConfig(std::string(kMinimal) +
                  "[limits]\nmax_connections_per_address = 0\n"
                  "address_limit_exempts_loopback = false\nsmtp_max_auth_line = 4096\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_limits.max_connections_per_address, 0u);
  EXPECT_FALSE(c->node_limits.address_limit_exempts_loopback);
  EXPECT_EQ(c->smtp.max_auth_line, 4096u);
  c = ParseConfig(std::string(kMinimal) +
                  "[limits]\nsmtp_max_command_line = 2048\nsmtp_max_auth_line = 1024\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().rfind("limits.smtp_max_auth_line: must be at least", 0), 0u);
}

TEST(Config, PostmasterIsEmptyByDefaultAndCanonicalWhenSet) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mail.postmaster, "");  // postmaster@<first domain>, created at start
  // [mail] appears twice in one file otherwise: give the whole section.
  c = ParseConfig(
      "[node]\ndata_dir = \"/tmp/x\"\n[mail]\ndomains = [\"example.test\", \"Second.Test\"]\n"
      "postmaster = \"Admin@SECOND.test\"\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mail.postmaster, "admin@second.test");
  const std::string head = "[node]\ndata_dir = \"/tmp/x\"\n[mail]\ndomains = [\"example.test\"]\n";
  c = ParseConfig(head + "postmaster = \"admin\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "mail.postmaster: must be a mail address");
  // Mail to the postmaster stays here: we are never a relay.
  c = ParseConfig(head + "postmaster = \"admin@elsewhere.test\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "mail.postmaster: must be in one of mail.domains");
}

TEST(Config, ReadsAcme) {
  const Config off = Parse();
  EXPECT_FALSE(off.acme.enabled());
  EXPECT_EQ(off.listen.acme_http, "");

  const Config c = Parse(R"(
[listen]
acme_http = "0.0.0.0:80"
imaps = "127.0.0.1:993"
[acme]
directory_url = "https://acme.example/dir"
email = "ops@example.test"
domains = ["Mail.Example.TEST", "imap.example.test"]
ca_file = "/etc/ca.pem"
renew_before_days = 20
check_interval_s = 600
retry_max_s = 7200
)");
  EXPECT_TRUE(c.acme.enabled());
  EXPECT_EQ(c.listen.acme_http, "0.0.0.0:80");
  EXPECT_EQ(c.acme.domains, (std::vector<std::string>{"mail.example.test", "imap.example.test"}));
  EXPECT_EQ(c.acme.challenge, "http-01");
  EXPECT_EQ(c.acme.renew_before_days, 20);
  EXPECT_EQ(c.acme.check_interval, std::chrono::seconds(600));
  EXPECT_EQ(c.acme.retry_max, std::chrono::seconds(7200));
  EXPECT_EQ(c.acme.validation_timeout, std::chrono::seconds(120));

  // The domains default to the mail host name.
  Result<Config> d = ParseConfig(R"(
[node]
data_dir = "/tmp/x"
[mail]
domains = ["example.test"]
hostname = "mx.example.test"
[acme]
directory_url = "https://acme.example/dir"
)");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->acme.domains, std::vector<std::string>{"mx.example.test"});
}

TEST(Config, AcmeErrorsNameTheKey) {
  EXPECT_EQ(ErrorFor("[acme]\ndirectory_url = \"http://ca/dir\"\ndomains = [\"a.b\"]\n"),
            "acme.directory_url: must be an https:// URL");
  EXPECT_EQ(ErrorFor("[acme]\ndirectory_url = \"https://ca/dir\"\nchallenge = \"dns-01\"\n"),
            "acme.challenge: must be \"http-01\"");
  EXPECT_EQ(ErrorFor("[acme]\ndirectory_url = \"https://ca/dir\"\ndomains = [\"localhost\"]\n"),
            "acme.domains: \"localhost\" is not a fully qualified DNS name");
  EXPECT_EQ(ErrorFor("[acme]\ndirectory_url = \"https://ca/dir\"\ndomains = [\"a.b\"]\n"
                     "check_interval_s = 100\nretry_max_s = 10\n"),
            "acme.retry_max_s: must be at least acme.check_interval_s");
  EXPECT_EQ(ErrorFor("[acme]\nrenew_before_days = 0\n"),
            "acme.renew_before_days: must be at least 1");
  EXPECT_EQ(ErrorFor("[listen]\nacme_http = \"nope\"\n"), "listen.acme_http: must be host:port");
  // Implicit TLS with only [acme]: fine (its certificate serves).
  EXPECT_EQ(ErrorFor("[listen]\nimaps = \"127.0.0.1:0\"\n[acme]\n"
                     "directory_url = \"https://ca/dir\"\ndomains = [\"a.b\"]\n"),
            "ok");
}

TEST(Config, DnsDefaultsToTheSystemResolver) {
  Result<Config> c = ParseConfig(kMinimal);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->dns.servers.empty());
  EXPECT_EQ(c->dns.timeout, std::chrono::milliseconds(10000));
  EXPECT_TRUE(c->dns.own_names.empty());
  EXPECT_TRUE(c->dns.own_addresses.empty());
  EXPECT_EQ(c->dns.limits.max_mx_hosts, 10u);
  EXPECT_EQ(c->dns.limits.max_addresses, 5u);
  EXPECT_EQ(c->dns.limits.families, outbound::AddressFamilies::kAny);
  EXPECT_EQ(c->dns.limits.preference, outbound::AddressPreference::kIpv6);
}

TEST(Config, ReadsDns) {
  Result<Config> c = ParseConfig(std::string(kMinimal) + R"(
[dns]
servers = ["127.0.0.1:5353", "[::1]:5353", "192.0.2.53"]
timeout_ms = 750
own_names = ["mx1.example.test"]
own_addresses = ["192.0.2.25", "2001:db8::25"]
max_mx_hosts = 3
max_addresses = 8
address_families = "ipv4"
address_preference = "ipv4"
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->dns.servers,
            (std::vector<std::string>{"127.0.0.1:5353", "[::1]:5353", "192.0.2.53"}));
  EXPECT_EQ(c->dns.timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(c->dns.own_names, std::vector<std::string>{"mx1.example.test"});
  EXPECT_EQ(c->dns.own_addresses.size(), 2u);
  EXPECT_EQ(c->dns.limits.max_mx_hosts, 3u);
  EXPECT_EQ(c->dns.limits.max_addresses, 8u);
  EXPECT_EQ(c->dns.limits.families, outbound::AddressFamilies::kIpv4Only);
  EXPECT_EQ(c->dns.limits.preference, outbound::AddressPreference::kIpv4);
}

TEST(Config, DnsErrorsNameTheKey) {
  auto error = [](const std::string& extra) {
    Result<Config> c = ParseConfig(std::string(kMinimal) + "[dns]\n" + extra);
    return c.ok() ? std::string("ok") : c.status().message();
  };
  EXPECT_EQ(error("servers = [\"dns.example:53\"]\n"),
            "dns.servers: \"dns.example:53\": must be a numeric IP address[:port]");
  EXPECT_EQ(error("servers = [\"127.0.0.1:0\"]\n"),
            "dns.servers: \"127.0.0.1:0\": port must be 1-65535");
  EXPECT_EQ(error("servers = \"127.0.0.1\"\n"), "dns.servers: must be a list of strings");
  EXPECT_EQ(error("timeout_ms = 0\n"), "dns.timeout_ms: must be positive");
  EXPECT_EQ(error("max_mx_hosts = 0\n"), "dns.max_mx_hosts: must be at least 1");
  EXPECT_EQ(error("max_addresses = 0\n"), "dns.max_addresses: must be at least 1");
  EXPECT_EQ(error("own_addresses = [\"mx.example\"]\n"),
            "dns.own_addresses: \"mx.example\" is not a numeric IP address");
  EXPECT_EQ(error("address_families = \"both\"\n"),
            "dns.address_families: must be one of \"any\", \"ipv4\", \"ipv6\"");
  EXPECT_EQ(error("address_preference = \"any\"\n"),
            "dns.address_preference: must be one of \"ipv6\", \"ipv4\"");
  EXPECT_EQ(error("resolver = \"x\"\n"), "dns.resolver: unknown key");
}

TEST(Config, DefaultConfigRoundTrips) {
  std::string text = DefaultConfigToml();
  EXPECT_NE(text.find("smtp_max_message_bytes = 52428800"), std::string::npos);
  // The printed defaults (plus the two required values) parse back.
  std::string filled = text;
  filled.replace(filled.find("data_dir = \"\""), 13, "data_dir = \"/d\"");
  filled.replace(filled.find("domains = []"), 12, "domains = [\"example.test\"]");
  Result<Config> c = ParseConfig(filled);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

}  // namespace
}  // namespace porcupine::node

namespace porcupine::node {
namespace {

TEST(Config, EveryKeyIsDocumented) {
  std::ifstream in(std::string(PORCUPINE_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md missing";
  std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream defaults(DefaultConfigToml());
  std::string line, section;
  int keys = 0;
  while (std::getline(defaults, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line;
      EXPECT_NE(docs.find("## " + section), std::string::npos) << section;
      continue;
    }
    std::string key = line.substr(0, line.find(' '));
    ++keys;
    EXPECT_NE(docs.find("| `" + key + "` |"), std::string::npos) << section << " " << key;
  }
  EXPECT_GT(keys, 30);
}

}  // namespace
}  // namespace porcupine::node
