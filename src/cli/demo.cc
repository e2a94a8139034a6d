#include "cli/demo.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cli/admin_client.h"
#include "cli/certs.h"

namespace porcupine::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct DemoUser {
  const char* address;
  const char* password;
};
constexpr DemoUser kUsers[] = {{"alice@example.test", "alice-secret"},
                               {"bob@example.test", "bob-secret"},
                               {"carol@example.test", "carol-secret"}};

// Ports of node i: base + 10 * (i - 1) + the offset of each listener.
struct NodeProc {
  std::string name;
  fs::path dir;
  int smtp, pop3, admin, cluster, imap, submission, submissions, imaps, pop3s;
  pid_t pid = -1;
};

NodeProc MakeNode(const fs::path& dir, int index, int base_port) {
  int b = base_port + 10 * index;
  std::string name = fmt::format("node{}", index + 1);
  return {name, dir / name, b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8};
}

// What every node of the demo shares: the cluster secret, the admin token
// and the directory of the demo CA (certs/ca.crt, certs/NODE.crt, NODE.key).
struct Secrets {
  std::string cluster_secret;
  std::string admin_token;
  fs::path certs;
  fs::path ca_file() const { return certs / "ca.crt"; }
};

// TLS everywhere, on loopback: each node's certificate (from the demo CA,
// naming the node, localhost, 127.0.0.1 and ::1) serves the mail listeners
// ([tls]), mutual TLS between the nodes ([cluster]) and HTTPS on the admin
// API ([admin], with a token).
std::string NodeConfig(const NodeProc& n, const std::vector<NodeProc>& all, const Secrets& s) {
  std::string seeds;
  for (const NodeProc& o : all)
    if (o.name != n.name)
      seeds += fmt::format("{}\"127.0.0.1:{}\"", seeds.empty() ? "" : ", ", o.cluster);
  const std::string crt = (s.certs / (n.name + ".crt")).string();
  const std::string key = (s.certs / (n.name + ".key")).string();
  return fmt::format(R"([node]
name = "{0}"
data_dir = "{1}"

[listen]
smtp = "127.0.0.1:{2}"
pop3 = "127.0.0.1:{3}"
imap = "127.0.0.1:{4}"
admin = "127.0.0.1:{5}"
cluster = "127.0.0.1:{6}"
submission = "127.0.0.1:{7}"
submissions = "127.0.0.1:{8}"
imaps = "127.0.0.1:{9}"
pop3s = "127.0.0.1:{10}"

[tls]
cert_file = "{11}"
key_file = "{12}"

[cluster]
seeds = [{13}]
secret = "{14}"
tls_ca_file = "{15}"
tls_cert_file = "{11}"
tls_key_file = "{12}"

[admin]
token = "{16}"
tls_cert_file = "{11}"
tls_key_file = "{12}"

[mail]
domains = ["example.test"]
hostname = "{0}.example.test"
)",
                     n.name, (n.dir / "data").string(), n.smtp, n.pop3, n.imap, n.admin, n.cluster,
                     n.submission, n.submissions, n.imaps, n.pop3s, crt, key, seeds,
                     s.cluster_secret, s.ca_file().string(), s.admin_token);
}

// A random hex string, kept in dir/name so that a demo restarted on the same
// --dir reuses it.
std::string KeptSecret(const fs::path& dir, const char* name) {
  std::string secret;
  {
    std::ifstream in(dir / name);
    std::getline(in, secret);
  }
  if (!secret.empty()) return secret;
  unsigned char raw[16];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  urandom.read(reinterpret_cast<char*>(raw), sizeof raw);
  for (unsigned char c : raw) secret += fmt::format("{:02x}", c);
  std::ofstream out(dir / name);
  out << secret << "\n";
  out.close();
  fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write);
  return secret;
}

// The demo CA and a certificate per node in dir/certs (`porcupine cluster
// certs`); files already there (a restarted demo) are kept.
Status MakeDemoCerts(const fs::path& certs, const std::vector<NodeProc>& nodes) {
  CertsOptions o;
  o.out = certs.string();
  for (const NodeProc& n : nodes)
    if (!fs::exists(certs / (n.name + ".crt"))) o.nodes.push_back(n.name);
  if (o.nodes.empty()) return Status::Ok();
  std::string report;
  return MakeClusterCerts(o, &report);
}

pid_t Spawn(const char* self, const fs::path& config, const fs::path& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);  // a demo killed outright takes its nodes along
  sigset_t none;                     // the demo blocks SIGINT/SIGTERM; the node must get them
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  FILE* out = std::freopen(log.c_str(), "a", stderr);
  (void)out;
  execl(self, self, "node", "--config", config.c_str(), static_cast<char*>(nullptr));
  _exit(127);
}

AdminClient AdminOf(const NodeProc& n, const Secrets& s) {
  return AdminClient(fmt::format("https://127.0.0.1:{}", n.admin), s.admin_token,
                     s.ca_file().string());
}

bool WaitReady(const NodeProc& n, const Secrets& s, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  AdminClient client = AdminOf(n, s);
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(n.pid, &status, WNOHANG) == n.pid) return false;
    auto r = client.Call("GET", "/readyz");
    if (r.ok() && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// True once the node's view holds `want` members, all of them ready.
bool WaitMembers(AdminClient& admin, size_t want, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto r = admin.Call("GET", "/v1/cluster");
    if (r.ok() && r->status == 200 && r->body.value("ready", false)) {
      size_t up = 0;
      for (const auto& m : r->body["members"]) up += m.value("state", "") == "up";
      if (up == want) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void StopAll(std::vector<NodeProc>& nodes) {
  for (NodeProc& n : nodes)
    if (n.pid > 0) kill(n.pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(15);
  for (NodeProc& n : nodes) {
    while (n.pid > 0) {
      int status = 0;
      if (waitpid(n.pid, &status, WNOHANG) == n.pid) {
        n.pid = -1;
      } else if (Clock::now() > deadline) {
        kill(n.pid, SIGKILL);
        waitpid(n.pid, &status, 0);
        n.pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

void PrintWelcome(const std::vector<NodeProc>& nodes, const fs::path& dir, const Secrets& s,
                  const fs::path& self) {
  const std::string ca = s.ca_file().string();
  std::printf("\nporcupine demo: %zu node(s) on 127.0.0.1, data in %s\n", nodes.size(),
              dir.c_str());
  std::printf("TLS everywhere: every listener has a certificate of the demo CA\n");
  std::printf("  CA certificate: %s\n", ca.c_str());
  std::printf("  admin token:    %s\n\n", s.admin_token.c_str());
  for (const NodeProc& n : nodes) {
    std::printf(
        "  %-6s SMTP %d (STARTTLS)  submission %d (STARTTLS)  submissions %d (TLS)\n"
        "         IMAP %d (STARTTLS)  IMAPS %d  POP3 %d (STLS)  POP3S %d\n"
        "         admin https://127.0.0.1:%d  cluster %d (mutual TLS)\n",
        n.name.c_str(), n.smtp, n.submission, n.submissions, n.imap, n.imaps, n.pop3, n.pop3s,
        n.admin, n.cluster);
  }
  std::printf("\nusers (domain example.test):\n");
  for (const DemoUser& u : kUsers) std::printf("  %-20s password %s\n", u.address, u.password);
  const NodeProc& first = nodes.front();
  const NodeProc& last = nodes.back();
  std::printf(
      "\ntry (mail sent through one node is read through another):\n"
      "  swaks --tls --tls-verify --tls-ca-path %s --server 127.0.0.1:%d "
      "--to alice@example.test --from bob@example.test\n"
      "  openssl s_client -starttls imap -CAfile %s -connect 127.0.0.1:%d\n"
      "  openssl s_client -CAfile %s -connect 127.0.0.1:%d\n"
      "  python3 -c \"import imaplib, ssl; i = imaplib.IMAP4_SSL('127.0.0.1', %d, "
      "ssl_context=ssl.create_default_context(cafile='%s')); "
      "i.login('alice@example.test', 'alice-secret'); print(i.select('INBOX'))\"\n"
      "  python3 -c \"import poplib, ssl; p = poplib.POP3_SSL('127.0.0.1', %d, "
      "context=ssl.create_default_context(cafile='%s')); p.user('alice@example.test'); "
      "p.pass_('alice-secret'); print(p.stat())\"\n",
      ca.c_str(), first.smtp, ca.c_str(), last.imap, ca.c_str(), last.imaps, last.imaps, ca.c_str(),
      last.pop3s, ca.c_str());
  std::printf(
      "submission with SMTP AUTH (STARTTLS, then AUTH PLAIN; the sender must be the user):\n"
      "  swaks --tls --tls-verify --tls-ca-path %s --auth PLAIN --auth-user alice@example.test "
      "--auth-password alice-secret --server 127.0.0.1:%d --to bob@example.test "
      "--from alice@example.test\n",
      ca.c_str(), first.submission);
  std::printf(
      "admin API (HTTPS with the token):\n"
      "  curl -s --cacert %s -H 'Authorization: Bearer %s' https://127.0.0.1:%d/metrics "
      "| grep porcupine_\n"
      "  export PORCUPINE_ADMIN_CA=%s PORCUPINE_ADMIN_TOKEN=%s\n"
      "  %s user add dave@example.test --admin https://127.0.0.1:%d\n"
      "  %s cluster status --admin https://127.0.0.1:%d\n"
      "\nlogs: %s/<node>/node.log    Ctrl-C stops the demo.\n",
      ca.c_str(), s.admin_token.c_str(), first.admin, ca.c_str(), s.admin_token.c_str(),
      self.c_str(), first.admin, self.c_str(), first.admin, dir.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunDemo(const DemoOptions& options, const char* self_arg) {
  if (options.nodes < 1) {
    std::fprintf(stderr, "porcupine demo: --nodes must be at least 1\n");
    return 2;
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) self = self_arg;
  fs::path dir = options.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/porcupine-demo-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("porcupine demo: mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  fs::create_directories(dir, ec);
  dir = fs::absolute(dir, ec);  // the node configs name files in it
  // The demo's secrets and certificates are kept with its data (a restarted
  // demo on the same --dir reuses them).
  Secrets secrets{KeptSecret(dir, "cluster-secret"), KeptSecret(dir, "admin-token"), dir / "certs"};
  std::vector<NodeProc> nodes;
  for (int i = 0; i < options.nodes; ++i) nodes.push_back(MakeNode(dir, i, options.base_port));
  if (Status st = MakeDemoCerts(secrets.certs, nodes); !st.ok()) {
    std::fprintf(stderr, "porcupine demo: certificates: %s\n", st.message().c_str());
    return 1;
  }
  // Block the stop signals before any child exists; we wait for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  for (NodeProc& n : nodes) {
    fs::create_directories(n.dir);
    std::ofstream(n.dir / "porcupine.toml") << NodeConfig(n, nodes, secrets);
    n.pid = Spawn(self.c_str(), n.dir / "porcupine.toml", n.dir / "node.log");
  }
  for (NodeProc& n : nodes) {
    if (!WaitReady(n, secrets, std::chrono::seconds(30))) {
      std::fprintf(stderr, "porcupine demo: %s did not become ready; see %s\n", n.name.c_str(),
                   (n.dir / "node.log").c_str());
      StopAll(nodes);
      return 1;
    }
  }
  AdminClient admin = AdminOf(nodes.front(), secrets);
  if (!WaitMembers(admin, nodes.size(), std::chrono::seconds(30))) {
    std::fprintf(stderr, "porcupine demo: the nodes did not form one cluster; see the logs in %s\n",
                 dir.c_str());
    StopAll(nodes);
    return 1;
  }
  for (const DemoUser& u : kUsers) {
    nlohmann::json body = {{"address", u.address}, {"password", u.password}};
    auto r = admin.Call("POST", "/v1/users", &body);
    if (!r.ok() || (r->status != 201 && r->status != 409)) {
      std::fprintf(stderr, "porcupine demo: cannot create %s\n", u.address);
      StopAll(nodes);
      return 1;
    }
  }
  PrintWelcome(nodes, dir, secrets, self);

  int sig = 0;
  sigwait(&stop, &sig);
  std::printf("\nstopping the demo...\n");
  StopAll(nodes);
  std::printf("stopped. Data kept in %s\n", dir.c_str());
  return 0;
}

}  // namespace porcupine::cli
