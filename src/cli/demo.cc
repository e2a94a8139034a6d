#include "cli/demo.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cli/admin_client.h"

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

struct NodeProc {
  std::string name;
  fs::path dir;
  int smtp, pop3, admin, cluster, imap;
  pid_t pid = -1;
};

std::string NodeConfig(const NodeProc& n, const std::vector<NodeProc>& all,
                       const std::string& secret) {
  std::string seeds;
  for (const NodeProc& o : all)
    if (o.name != n.name)
      seeds += fmt::format("{}\"127.0.0.1:{}\"", seeds.empty() ? "" : ", ", o.cluster);
  return fmt::format(R"([node]
name = "{}"
data_dir = "{}"

[listen]
smtp = "127.0.0.1:{}"
pop3 = "127.0.0.1:{}"
imap = "127.0.0.1:{}"
admin = "127.0.0.1:{}"
cluster = "127.0.0.1:{}"

[cluster]
seeds = [{}]
secret = "{}"

[mail]
domains = ["example.test"]
hostname = "{}.example.test"
)",
                     n.name, (n.dir / "data").string(), n.smtp, n.pop3, n.imap, n.admin, n.cluster,
                     seeds, secret, n.name);
}

pid_t Spawn(const char* self, const fs::path& config, const fs::path& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  sigset_t none;  // the demo blocks SIGINT/SIGTERM; the node must get them
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  FILE* out = std::freopen(log.c_str(), "a", stderr);
  (void)out;
  execl(self, self, "node", "--config", config.c_str(), static_cast<char*>(nullptr));
  _exit(127);
}

bool WaitReady(const NodeProc& n, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  AdminClient client(fmt::format("127.0.0.1:{}", n.admin), "");
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

void PrintWelcome(const std::vector<NodeProc>& nodes, const fs::path& dir) {
  std::printf("\nporcupine demo: %zu node(s) on 127.0.0.1, data in %s\n\n", nodes.size(),
              dir.c_str());
  for (const NodeProc& n : nodes) {
    std::printf(
        "  %-6s SMTP 127.0.0.1:%d  POP3 127.0.0.1:%d  IMAP 127.0.0.1:%d  admin "
        "http://127.0.0.1:%d\n",
        n.name.c_str(), n.smtp, n.pop3, n.imap, n.admin);
  }
  std::printf("\nusers (domain example.test):\n");
  for (const DemoUser& u : kUsers) std::printf("  %-20s password %s\n", u.address, u.password);
  const NodeProc& n = nodes.front();
  std::printf(
      "\ntry:\n"
      "  swaks --server 127.0.0.1:%d --to alice@example.test --from bob@example.test\n"
      "  python3 -c \"import poplib; p=poplib.POP3('127.0.0.1',%d); p.user('alice@example.test');"
      " p.pass_('alice-secret'); print(p.stat())\"\n"
      "  python3 -c \"import imaplib; i=imaplib.IMAP4('127.0.0.1',%d); "
      "i.login('alice@example.test',"
      " 'alice-secret'); print(i.select('INBOX'))\"\n"
      "  curl -s http://127.0.0.1:%d/metrics | grep porcupine_\n"
      "  porcupine user add dave@example.test --password dave-secret --admin 127.0.0.1:%d\n"
      "  porcupine cluster status --admin 127.0.0.1:%d\n"
      "\nMail sent through any node is readable through every other one.\n"
      "logs: %s/<node>/node.log    Ctrl-C stops the demo.\n",
      n.smtp, nodes.back().pop3, nodes.back().imap, n.admin, n.admin, n.admin, dir.c_str());
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
  // One secret for the demo cluster, kept with its data (a restarted demo on
  // the same --dir reuses it).
  std::string secret;
  {
    std::ifstream in(dir / "cluster-secret");
    std::getline(in, secret);
  }
  if (secret.empty()) {
    unsigned char raw[16];
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    urandom.read(reinterpret_cast<char*>(raw), sizeof raw);
    for (unsigned char c : raw) secret += fmt::format("{:02x}", c);
    std::ofstream(dir / "cluster-secret") << secret << "\n";
  }
  std::vector<NodeProc> nodes;
  for (int i = 0; i < options.nodes; ++i) {
    int base = options.base_port + 10 * i;
    std::string name = fmt::format("node{}", i + 1);
    nodes.push_back({name, dir / name, base, base + 1, base + 2, base + 3, base + 4});
  }
  // Block the stop signals before any child exists; we wait for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  for (NodeProc& n : nodes) {
    fs::create_directories(n.dir);
    std::ofstream(n.dir / "porcupine.toml") << NodeConfig(n, nodes, secret);
    n.pid = Spawn(self.c_str(), n.dir / "porcupine.toml", n.dir / "node.log");
  }
  for (NodeProc& n : nodes) {
    if (!WaitReady(n, std::chrono::seconds(30))) {
      std::fprintf(stderr, "porcupine demo: %s did not become ready; see %s\n", n.name.c_str(),
                   (n.dir / "node.log").c_str());
      StopAll(nodes);
      return 1;
    }
  }
  AdminClient admin(fmt::format("127.0.0.1:{}", nodes.front().admin), "");
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
  PrintWelcome(nodes, dir);

  int sig = 0;
  sigwait(&stop, &sig);
  std::printf("\nstopping the demo...\n");
  StopAll(nodes);
  std::printf("stopped. Data kept in %s\n", dir.c_str());
  return 0;
}

}  // namespace porcupine::cli
