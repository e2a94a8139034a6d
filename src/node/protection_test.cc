#include "node/protection.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "net/pki.h"

namespace porcupine::node {
namespace {

Config Parse(const std::string& extra) {
  Result<Config> c = ParseConfig(R"(
[node]
data_dir = "/tmp/x"
[mail]
domains = ["example.test"]
)" + extra);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : Config{};
}

const char* kTls = R"(
tls_ca_file = "/etc/porcupine/ca.crt"
tls_cert_file = "/etc/porcupine/n1.crt"
tls_key_file = "/etc/porcupine/n1.key"
)";

TEST(Protection, LoopbackIsLocalhostAnd127And1) {
  for (const char* a : {"127.0.0.1:7000", "127.0.0.2:0", "127.255.0.1:1", "localhost:7000",
                        "[::1]:7000", "::1:7000"}) {
    EXPECT_TRUE(IsLoopback(a)) << a;
  }
  for (const char* a :
       {"0.0.0.0:7000", "[::]:7000", ":7000", "*:7000", "10.77.3.1:7000", "192.168.1.1:25",
        "node2:7000", "localhost.example:7000", "[::ffff:127.0.0.1]:7000", "128.0.0.1:7000"}) {
    EXPECT_FALSE(IsLoopback(a)) << a;
  }
}

TEST(Protection, DefaultsAndLoopbackNeedNothing) {
  EXPECT_TRUE(CheckExposure(Parse("")).ok());
  Config c = Parse(R"(
[listen]
cluster = "127.0.0.5:7000"
admin = "[::1]:8080"
[cluster]
seeds = ["127.0.0.6:7000", "localhost:7001"]
)");
  EXPECT_TRUE(CheckExposure(c).ok()) << CheckExposure(c).ToString();
  EXPECT_TRUE(InsecureWarnings(c).empty());
}

TEST(Protection, ClusterBeyondLoopbackNeedsMutualTlsAndASecret) {
  struct Case {
    std::string config;
    std::string want;  // "" = allowed; else the start of the refusal
  };
  const std::string tls = std::string("[cluster]\n") + kTls;
  const std::vector<Case> cases = {
      {"[listen]\ncluster = \"0.0.0.0:7000\"\n[cluster]\nadvertise = \"10.0.0.1:7000\"\n",
       "listen.cluster: 0.0.0.0:7000 is not a loopback address: cluster traffic beyond this "
       "machine needs mutual TLS and a cluster.secret"},
      {"[listen]\ncluster = \"10.0.0.1:7000\"\n[cluster]\nsecret = \"s\"\n",
       "listen.cluster: 10.0.0.1:7000 is not a loopback address: cluster traffic beyond this "
       "machine needs mutual TLS ("},
      {"[listen]\ncluster = \"10.0.0.1:7000\"\n" + tls,
       "listen.cluster: 10.0.0.1:7000 is not a loopback address: cluster traffic beyond this "
       "machine needs a cluster.secret"},
      {"[listen]\ncluster = \"10.0.0.1:7000\"\n" + tls + "secret = \"s\"\n", ""},
      // Calling out is exposure too: the secret would go to whoever answers.
      {"[cluster]\nsecret = \"s\"\nseeds = [\"127.0.0.1:7001\", \"10.0.0.2:7000\"]\n",
       "cluster.seeds: 10.0.0.2:7000 is not a loopback address"},
      {"[cluster]\nsecret = \"s\"\nseeds = [\"node2:7000\"]\n",
       "cluster.seeds: node2:7000 is not a loopback address"},
      {"[cluster]\nadvertise = \"192.168.0.5:7000\"\n",
       "cluster.advertise: 192.168.0.5:7000 is not a loopback address"},
      {tls + "secret = \"s\"\nseeds = [\"node2:7000\"]\n", ""},
      {"[listen]\ncluster = \"10.0.0.1:7000\"\n[cluster]\nallow_insecure = true\n", ""},
  };
  for (const Case& tc : cases) {
    Status st = CheckExposure(Parse(tc.config));
    if (tc.want.empty()) {
      EXPECT_TRUE(st.ok()) << tc.config << " -> " << st.ToString();
    } else {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << tc.config;
      EXPECT_EQ(st.message().substr(0, tc.want.size()), tc.want) << st.message();
    }
  }
}

TEST(Protection, AdminBeyondLoopbackNeedsHttpsAndAToken) {
  const std::string https =
      "[admin]\ntls_cert_file = \"/etc/a.crt\"\ntls_key_file = \"/etc/a.key\"\n";
  struct Case {
    std::string config;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"[listen]\nadmin = \"0.0.0.0:8080\"\n",
       "listen.admin: 0.0.0.0:8080 is not a loopback address: the admin API there needs HTTPS "
       "and an admin.token"},
      {"[listen]\nadmin = \"10.0.0.1:8080\"\n[admin]\ntoken = \"t\"\n",
       "listen.admin: 10.0.0.1:8080 is not a loopback address: the admin API there needs HTTPS "
       "("},
      {"[listen]\nadmin = \"10.0.0.1:8080\"\n" + https,
       "listen.admin: 10.0.0.1:8080 is not a loopback address: the admin API there needs an "
       "admin.token"},
      {"[listen]\nadmin = \"10.0.0.1:8080\"\n" + https + "token = \"t\"\n", ""},
      {"[listen]\nadmin = \"10.0.0.1:8080\"\n[admin]\nallow_insecure = true\n", ""},
      {"[listen]\nadmin = \"\"\n", ""},
      // The cluster's escape hatch does not open the admin API.
      {"[listen]\nadmin = \"10.0.0.1:8080\"\n[cluster]\nallow_insecure = true\n",
       "listen.admin: 10.0.0.1:8080"},
  };
  for (const Case& tc : cases) {
    Status st = CheckExposure(Parse(tc.config));
    if (tc.want.empty()) {
      EXPECT_TRUE(st.ok()) << tc.config << " -> " << st.ToString();
    } else {
      EXPECT_EQ(st.code(), Code::kInvalidArgument) << tc.config;
      EXPECT_EQ(st.message().substr(0, tc.want.size()), tc.want) << st.message();
    }
  }
}

TEST(Protection, EscapeHatchesAreLogged) {
  Config c = Parse(R"(
[listen]
cluster = "10.0.0.1:7000"
admin = "10.0.0.1:8080"
[cluster]
allow_insecure = true
seeds = ["10.0.0.2:7000"]
[admin]
allow_insecure = true
)");
  ASSERT_TRUE(CheckExposure(c).ok());
  std::vector<std::string> w = InsecureWarnings(c);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_NE(w[0].find("listen.cluster 10.0.0.1:7000"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("cluster.seeds 10.0.0.2:7000"), std::string::npos) << w[1];
  EXPECT_NE(w[2].find("listen.admin 10.0.0.1:8080"), std::string::npos) << w[2];
}

TEST(Protection, TlsKeysComeAllOrNone) {
  Result<Config> c = ParseConfig(R"(
[node]
data_dir = "/tmp/x"
[mail]
domains = ["example.test"]
[cluster]
tls_ca_file = "/ca.crt"
tls_key_file = "/n1.key"
)");
  EXPECT_EQ(c.status().message(),
            "cluster.tls_cert_file: is required with cluster.tls_ca_file, cluster.tls_cert_file, "
            "cluster.tls_key_file");
  c = ParseConfig(R"(
[node]
data_dir = "/tmp/x"
[mail]
domains = ["example.test"]
[admin]
tls_cert_file = "/a.crt"
)");
  EXPECT_EQ(c.status().message(),
            "admin.tls_key_file: is required with admin.tls_cert_file, admin.tls_key_file");
}

// ---- the files -------------------------------------------------------------------

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/porcupine-protection-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Result<net::KeyPair> ca = net::MakeCa("test CA", 20);
    ASSERT_TRUE(ca.ok());
    ca_ = *ca;
    Write("ca.crt", ca_.cert_pem);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) { return dir_ + "/" + name; }
  void Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    std::ofstream(Path(name), std::ios::trunc) << text;
    chmod(Path(name).c_str(), mode);
  }
  void Issue(const net::KeyPair& ca, const std::string& name, std::vector<std::string> hosts) {
    Result<net::KeyPair> pair = net::IssueCert(ca, {name, std::move(hosts), 825});
    ASSERT_TRUE(pair.ok());
    Write(name + ".crt", pair->cert_pem);
    Write(name + ".key", pair->key_pem);
  }
  Config WithFiles(const std::string& cert, const std::string& key, const std::string& listen) {
    Config c;
    c.listen.cluster = listen;
    c.cluster.tls_ca_file = Path("ca.crt");
    c.cluster.tls_cert_file = Path(cert);
    c.cluster.tls_key_file = Path(key);
    return c;
  }

  std::string dir_;
  net::KeyPair ca_;
};

TEST_F(TlsFilesTest, ACertificateOfTheCaForTheDialledHostIsAccepted) {
  Issue(ca_, "n1", {"n1", "127.0.0.1", "10.0.0.1"});
  std::vector<std::string> warnings;
  Status st = CheckClusterTls(WithFiles("n1.crt", "n1.key", "127.0.0.1:7000"), &warnings);
  EXPECT_TRUE(st.ok()) << st.ToString();
  Config c = WithFiles("n1.crt", "n1.key", "0.0.0.0:7000");
  c.cluster.advertise = "10.0.0.1:7000";
  EXPECT_TRUE(CheckClusterTls(c, &warnings).ok());
  // The CA is valid 20 days only: the node certificate ends with it.
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("expires at"), std::string::npos) << warnings[0];
}

TEST_F(TlsFilesTest, EveryProblemNamesItsKey) {
  Issue(ca_, "n1", {"n1", "127.0.0.1"});
  Issue(ca_, "n2", {"n2", "127.0.0.1"});
  Result<net::KeyPair> rogue_ca = net::MakeCa("rogue", 30);
  ASSERT_TRUE(rogue_ca.ok());
  Issue(*rogue_ca, "rogue", {"127.0.0.1"});
  Write("loose.key", net::ReadFileText(Path("n1.key")).value(), 0644);
  std::vector<std::string> w;
  struct Case {
    Config config;
    std::string want;
  };
  Config no_ca = WithFiles("n1.crt", "n1.key", "127.0.0.1:7000");
  no_ca.cluster.tls_ca_file = Path("absent.crt");
  Config advertised = WithFiles("n1.crt", "n1.key", "0.0.0.0:7000");
  advertised.cluster.advertise = "10.0.0.9:7000";
  const std::vector<Case> cases = {
      {no_ca, "cluster.tls_ca_file: cannot read"},
      {WithFiles("absent.crt", "n1.key", "127.0.0.1:7000"), "cluster.tls_cert_file: cannot read"},
      {WithFiles("n1.crt", "absent.key", "127.0.0.1:7000"), "cluster.tls_key_file: cannot read"},
      {WithFiles("n1.crt", "n2.key", "127.0.0.1:7000"), "cluster.tls_cert_file: "},
      {WithFiles("rogue.crt", "rogue.key", "127.0.0.1:7000"), "cluster.tls_cert_file: "},
      {WithFiles("n1.crt", "n1.key", "127.0.0.2:7000"), "cluster.tls_cert_file: "},
      {advertised, "cluster.tls_cert_file: "},
  };
  const std::vector<std::string> detail = {"",
                                           "",
                                           "",
                                           "does not match",
                                           "does not verify against the CA",
                                           "does not name 127.0.0.2, the host other nodes dial "
                                           "(listen.cluster)",
                                           "does not name 10.0.0.9, the host other nodes dial "
                                           "(cluster.advertise)"};
  for (size_t i = 0; i < cases.size(); ++i) {
    Status st = CheckClusterTls(cases[i].config, &w);
    EXPECT_FALSE(st.ok()) << i;
    EXPECT_EQ(st.message().substr(0, cases[i].want.size()), cases[i].want) << st.message();
    EXPECT_NE(st.message().find(detail[i]), std::string::npos) << st.message();
  }
  w.clear();
  EXPECT_TRUE(CheckClusterTls(WithFiles("n1.crt", "loose.key", "127.0.0.1:7000"), &w).ok());
  ASSERT_FALSE(w.empty());
  EXPECT_NE(w[0].find("readable by others (mode 644)"), std::string::npos) << w[0];
  EXPECT_TRUE(CheckClusterTls(Config{}, &w).ok());  // no TLS: nothing to check
}

}  // namespace
}  // namespace porcupine::node
