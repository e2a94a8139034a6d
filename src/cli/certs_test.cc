#include "cli/certs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "net/pki.h"

namespace porcupine::cli {
namespace {

namespace fs = std::filesystem;

class CertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/porcupine-certs-XXXXXX";
    root_ = mkdtemp(tmpl);
    out_ = root_ + "/certs";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Read(const std::string& name) { return net::ReadFileText(out_ + "/" + name).value(); }
  unsigned Mode(const std::string& name) {
    struct stat st = {};
    EXPECT_EQ(stat((out_ + "/" + name).c_str(), &st), 0) << name;
    return st.st_mode & 0777;
  }

  std::string root_;
  std::string out_;
};

TEST_F(CertsTest, MakesACaAndNodeCertificatesThatVerify) {
  CertsOptions o;
  o.out = out_;
  o.nodes = {"n1", "n2", "n3"};
  o.hosts = {"127.0.0.1", "10.77.5.1", "mx.example.net"};
  std::string report;
  Status st = MakeClusterCerts(o, &report);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Mode(""), 0700u);
  EXPECT_EQ(Mode("ca.key"), 0600u);
  EXPECT_EQ(Mode("ca.crt"), 0644u);
  const std::string ca = Read("ca.crt");
  for (const std::string& n : o.nodes) {
    EXPECT_EQ(Mode(n + ".key"), 0600u);
    net::KeyPair pair{Read(n + ".crt"), Read(n + ".key")};
    Status v = net::VerifyKeyPair(ca, pair);
    EXPECT_TRUE(v.ok()) << n << ": " << v.ToString();
    for (const std::string& h :
         {n, std::string("127.0.0.1"), std::string("10.77.5.1"), std::string("mx.example.net")}) {
      EXPECT_TRUE(net::CertNamesHost(pair.cert_pem, h)) << n << " " << h;
    }
    EXPECT_FALSE(net::CertNamesHost(pair.cert_pem, "localhost")) << n;
    EXPECT_NE(report.find("tls_cert_file = \"" + fs::absolute(out_).string() + "/" + n + ".crt\""),
              std::string::npos)
        << report;
  }
  // Node certificates are not CAs: n1 cannot mint a certificate that verifies.
  auto minted = net::IssueCert({Read("n1.crt"), Read("n1.key")}, {"n9", {"n9"}, 30});
  ASSERT_TRUE(minted.ok());
  EXPECT_FALSE(net::VerifyKeyPair(ca, *minted).ok());
}

TEST_F(CertsTest, ASecondRunAddsNodesWithTheSameCaAndNeverOverwritesKeys) {
  CertsOptions o;
  o.out = out_;
  o.nodes = {"n1"};
  std::string report;
  ASSERT_TRUE(MakeClusterCerts(o, &report).ok());
  const std::string ca = Read("ca.crt");
  const std::string n1_key = Read("n1.key");
  o.nodes = {"n2"};
  ASSERT_TRUE(MakeClusterCerts(o, &report).ok());
  EXPECT_EQ(Read("ca.crt"), ca);
  EXPECT_TRUE(net::VerifyKeyPair(ca, {Read("n2.crt"), Read("n2.key")}).ok());
  o.nodes = {"n3", "n1"};
  Status st = MakeClusterCerts(o, &report);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("n1.crt: exists"), std::string::npos) << st.message();
  EXPECT_EQ(Read("n1.key"), n1_key);
  EXPECT_FALSE(fs::exists(out_ + "/n3.crt"));  // nothing written on a refusal
}

TEST_F(CertsTest, BadInputIsRefusedBeforeAnythingIsWritten) {
  std::string report;
  for (const auto& nodes : std::vector<std::vector<std::string>>{
           {}, {"ca"}, {"n1", "n1"}, {"../x"}, {"a b"}, {".hidden"}}) {
    CertsOptions o;
    o.out = out_;
    o.nodes = nodes;
    EXPECT_EQ(MakeClusterCerts(o, &report).code(), Code::kInvalidArgument) << nodes.size();
  }
  CertsOptions o;
  o.out = out_;
  o.nodes = {"n1"};
  o.hosts = {"bad,host"};
  EXPECT_EQ(MakeClusterCerts(o, &report).code(), Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out_));
  // A CA certificate without its key cannot sign.
  fs::create_directories(out_);
  { std::ofstream(out_ + "/ca.crt") << "x"; }
  o.hosts = {"127.0.0.1"};
  Status st = MakeClusterCerts(o, &report);
  EXPECT_NE(st.message().find("found ca.crt without ca.key"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace porcupine::cli
