#include "cli/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "bench/bench.h"
#include "cli/admin_client.h"
#include "cli/certs.h"
#include "cli/demo.h"
#include "cli/dns_route.h"
#include "cli/password_input.h"
#include "node/config.h"
#include "node/node.h"

namespace porcupine::cli {
namespace {

int RunNode(const std::string& config_path, const std::string& log_level) {
  Result<node::Config> config = node::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "porcupine: %s\n", config.status().message().c_str());
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("porcupine"));  // stdout is for commands
  spdlog::set_level(spdlog::level::from_str(log_level.empty() ? config->log.level : log_level));
  node::Node n(std::move(*config));
  Status st = n.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "porcupine: %s\n", st.message().c_str());
    return 1;
  }
  n.Run();
  return 0;
}

// Prints an API failure and returns the exit status for it.
int Fail(const Result<AdminReply>& r, const std::string& what) {
  if (!r.ok()) {
    std::fprintf(stderr, "porcupine: %s\n", r.status().message().c_str());
    return 1;
  }
  std::string msg = r->body.is_object() && r->body.contains("message")
                        ? r->body["message"].get<std::string>()
                        : "HTTP " + std::to_string(r->status);
  std::fprintf(stderr, "porcupine: %s: %s\n", what.c_str(), msg.c_str());
  return 1;
}

struct UserArgs {
  std::string admin = "127.0.0.1:8080";
  std::string token;
  std::string ca_file;
  std::string address;
  PasswordOptions password;
  bool json = false;
};

void AddAdminOptions(CLI::App* app, UserArgs& a) {
  app->add_option("--admin", a.admin, "any node's admin API: host:port (HTTP) or https://host:port")
      ->capture_default_str();
  app->add_option("--token", a.token, "admin API token (or $PORCUPINE_ADMIN_TOKEN)")
      ->envname("PORCUPINE_ADMIN_TOKEN");
  app->add_option("--ca-file", a.ca_file,
                  "PEM CA the API's HTTPS certificate must chain to; implies HTTPS "
                  "(or $PORCUPINE_ADMIN_CA)")
      ->envname("PORCUPINE_ADMIN_CA");
}

// --password (kept for scripts; other users see it in ps) or
// --password-file; without either the password is asked for on the
// terminal (cli/password_input.h).
void AddPasswordOptions(CLI::App* app, UserArgs& a) {
  CLI::Option* file = app->add_option("--password-file", a.password.file,
                                      "read the password from the first line of FILE (mode 600)");
  app->add_option_function<std::string>(
         "--password",
         [&a](const std::string& pw) {
           a.password.password_given = true;
           a.password.password = pw;
         },
         "the password itself: visible to every user of this machine (ps), prefer "
         "--password-file or the prompt")
      ->excludes(file);
}

// Prints why there is no password and returns the exit status for it.
int FailPassword(const Status& st, const std::string& what) {
  std::fprintf(stderr, "porcupine: %s: %s\n", what.c_str(), st.message().c_str());
  return 1;
}

int UserAdd(const UserArgs& a) {
  Result<std::string> password = ObtainPassword(a.password, a.address);
  if (!password.ok()) return FailPassword(password.status(), "user add " + a.address);
  nlohmann::json body = {{"address", a.address}, {"password", *password}};
  auto r = AdminClient(a.admin, a.token, a.ca_file).Call("POST", "/v1/users", &body);
  if (!r.ok() || r->status != 201) return Fail(r, "user add " + a.address);
  std::printf("added %s\n", a.address.c_str());
  return 0;
}

int UserDel(const UserArgs& a) {
  auto r =
      AdminClient(a.admin, a.token, a.ca_file).Call("DELETE", "/v1/users/" + UrlEncode(a.address));
  if (!r.ok() || r->status != 204) return Fail(r, "user del " + a.address);
  std::printf("deleted %s\n", a.address.c_str());
  return 0;
}

int UserPasswd(const UserArgs& a) {
  Result<std::string> password = ObtainPassword(a.password, a.address);
  if (!password.ok()) return FailPassword(password.status(), "user passwd " + a.address);
  nlohmann::json body = {{"password", *password}};
  auto r = AdminClient(a.admin, a.token, a.ca_file)
               .Call("PUT", "/v1/users/" + UrlEncode(a.address) + "/password", &body);
  if (!r.ok() || r->status != 204) return Fail(r, "user passwd " + a.address);
  std::printf("password changed for %s\n", a.address.c_str());
  return 0;
}

int UserList(const UserArgs& a) {
  auto r = AdminClient(a.admin, a.token, a.ca_file).Call("GET", "/v1/users");
  if (!r.ok() || r->status != 200) return Fail(r, "user list");
  if (a.json) {
    std::cout << r->body.dump() << "\n";
  } else {
    for (const auto& u : r->body["users"]) std::cout << u.get<std::string>() << "\n";
  }
  return 0;
}

int ClusterStatus(const UserArgs& a) {
  auto r = AdminClient(a.admin, a.token, a.ca_file).Call("GET", "/v1/cluster");
  if (!r.ok() || r->status != 200) return Fail(r, "cluster status");
  const nlohmann::json& j = r->body;
  if (a.json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::printf("view %s, %d buckets%s%s\n", j.value("epoch", "?").c_str(), j.value("buckets", 0),
              j.value("ready", false) ? "" : " (not ready)",
              j.value("removed", false) ? " — this node was REMOVED" : "");
  std::printf("%-16s %-10s %-22s %-8s %6s %8s\n", "NAME", "ID", "ADDRESS", "STATE", "LOAD",
              "BUCKETS");
  for (const auto& m : j["members"]) {
    std::string load = m["load"].is_null() ? "-" : std::to_string(m["load"].get<uint64_t>());
    std::printf("%-16s %-10s %-22s %-8s %6s %8d%s\n", m.value("name", "").c_str(),
                m.value("id", "").c_str(), m.value("address", "").c_str(),
                m.value("state", "").c_str(), load.c_str(), m.value("buckets", 0),
                m.value("self", false) ? "  (this node)" : "");
  }
  return 0;
}

int ClusterRemove(const UserArgs& a) {
  nlohmann::json body = {{"node", a.address}};
  auto r = AdminClient(a.admin, a.token, a.ca_file).Call("POST", "/v1/cluster/remove", &body);
  if (!r.ok() || r->status != 200) return Fail(r, "cluster remove " + a.address);
  std::printf("removed %s; its buckets move to the other nodes\n", a.address.c_str());
  return 0;
}

int ClusterCerts(const CertsOptions& o) {
  std::string report;
  Status st = MakeClusterCerts(o, &report);
  if (!st.ok()) {
    std::fprintf(stderr, "porcupine: cluster certs: %s\n", st.message().c_str());
    return 1;
  }
  std::fputs(report.c_str(), stdout);
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"porcupine: a cluster mail service (SMTP, POP3) after Porcupine (SOSP 1999)"};
  app.require_subcommand(1);

  std::string config_path, log_level;
  bool print_defaults = false;
  CLI::App* node_cmd = app.add_subcommand("node", "run a node");
  node_cmd->add_option("--config", config_path, "TOML configuration file");
  node_cmd->add_option("--log-level", log_level, "override log.level");
  node_cmd->add_flag("--print-default-config", print_defaults,
                     "print every key with its default and exit");

  UserArgs ua;
  CLI::App* user_cmd = app.add_subcommand("user", "manage users through a node's admin API");
  user_cmd->require_subcommand(1);
  CLI::App* add = user_cmd->add_subcommand("add", "create a user");
  add->add_option("address", ua.address, "user@domain")->required();
  AddPasswordOptions(add, ua);
  AddAdminOptions(add, ua);
  CLI::App* del = user_cmd->add_subcommand("del", "delete a user and their mail");
  del->add_option("address", ua.address, "user@domain")->required();
  AddAdminOptions(del, ua);
  CLI::App* passwd = user_cmd->add_subcommand("passwd", "change a user's password");
  passwd->add_option("address", ua.address, "user@domain")->required();
  AddPasswordOptions(passwd, ua);
  AddAdminOptions(passwd, ua);
  CLI::App* list = user_cmd->add_subcommand("list", "list users");
  list->add_flag("--json", ua.json, "print JSON");
  AddAdminOptions(list, ua);

  UserArgs ca;
  CLI::App* cluster_cmd = app.add_subcommand("cluster", "inspect and change the cluster");
  cluster_cmd->require_subcommand(1);
  CLI::App* status = cluster_cmd->add_subcommand("status", "show the view as a node sees it");
  status->add_flag("--json", ca.json, "print JSON");
  AddAdminOptions(status, ca);
  CLI::App* remove = cluster_cmd->add_subcommand(
      "remove", "take a node out of the cluster for good (ask any other node)");
  remove->add_option("node", ca.address, "node name or id")->required();
  AddAdminOptions(remove, ca);
  CertsOptions certs;
  CLI::App* certs_cmd = cluster_cmd->add_subcommand(
      "certs", "create a cluster CA (or use the one in --out) and a certificate per node");
  certs_cmd->add_option("--out", certs.out, "directory for ca.crt, ca.key, NAME.crt, NAME.key")
      ->required();
  certs_cmd->add_option("--nodes", certs.nodes, "node names, comma-separated")
      ->required()
      ->delimiter(',');
  certs_cmd
      ->add_option("--hosts", certs.hosts,
                   "addresses and DNS names other nodes and clients dial, in every node "
                   "certificate besides its node name; comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  certs_cmd->add_option("--days", certs.days, "validity of the node certificates")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));
  certs_cmd->add_option("--ca-days", certs.ca_days, "validity of a new CA")
      ->capture_default_str()
      ->check(CLI::Range(1, 36500));

  DemoOptions demo;
  CLI::App* demo_cmd = app.add_subcommand("demo", "run a local demo cluster on loopback");
  demo_cmd->add_option("--nodes", demo.nodes, "number of nodes")->capture_default_str();
  demo_cmd
      ->add_option("--base-port", demo.base_port,
                   "SMTP port of node 1; POP3 +1, admin +2, cluster +3, IMAP +4, submission +5, "
                   "submissions +6, IMAPS +7, POP3S +8; node i adds 10*(i-1)")
      ->capture_default_str();
  demo_cmd->add_option("--dir", demo.dir, "data directory (default: a new temporary one)");

  DnsRouteOptions dns_route;
  CLI::App* dns_cmd = app.add_subcommand("dns", "outbound mail's view of DNS");
  dns_cmd->require_subcommand(1);
  CLI::App* route_cmd = dns_cmd->add_subcommand(
      "route", "print the hosts and addresses mail to DOMAIN would be sent to, in order");
  route_cmd->add_option("domain", dns_route.domain, "domain name or [address literal]")->required();
  route_cmd->add_option("--config", dns_route.config, "node configuration ([dns], mail.hostname)")
      ->required();
  route_cmd->add_flag("--json", dns_route.json, "print JSON");
  route_cmd->add_option("--seed", dns_route.seed,
                        "seed of the shuffle of equal MX preferences (0 = random)");

  bench::BenchOptions bench_opts;
  CLI::App* bench_cmd =
      app.add_subcommand("bench", "load generator: SMTP senders and POP3 readers");
  bench::AddOptions(bench_cmd, bench_opts);

  CLI11_PARSE(app, argc, argv);

  if (node_cmd->parsed()) {
    if (print_defaults) {
      std::cout << node::DefaultConfigToml();
      return 0;
    }
    if (config_path.empty()) {
      std::fprintf(stderr, "porcupine node: --config FILE is required\n");
      return 2;
    }
    return RunNode(config_path, log_level);
  }
  if (add->parsed()) return UserAdd(ua);
  if (del->parsed()) return UserDel(ua);
  if (passwd->parsed()) return UserPasswd(ua);
  if (list->parsed()) return UserList(ua);
  if (status->parsed()) return ClusterStatus(ca);
  if (remove->parsed()) return ClusterRemove(ca);
  if (certs_cmd->parsed()) return ClusterCerts(certs);
  if (demo_cmd->parsed()) return RunDemo(demo, argv[0]);
  if (bench_cmd->parsed()) return bench::Run(bench_opts);
  if (route_cmd->parsed()) return RunDnsRoute(dns_route);
  return 2;
}

}  // namespace porcupine::cli
