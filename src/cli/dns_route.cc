#include "cli/dns_route.h"

#include <asio.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "node/config.h"
#include "outbound/dns_resolver.h"
#include "outbound/route_resolve.h"

namespace porcupine::cli {
namespace {

constexpr int kExitTemporary = 75;  // sysexits.h EX_TEMPFAIL

nlohmann::json ToJson(const outbound::RoutePlan& plan) {
  nlohmann::json targets = nlohmann::json::array();
  for (const outbound::RouteTarget& t : plan.targets) {
    targets.push_back({{"host", t.host},
                       {"preference", t.preference},
                       {"address", t.address},
                       {"family", t.v6 ? "ipv6" : "ipv4"}});
  }
  return {{"domain", plan.domain},
          {"verdict", outbound::VerdictName(plan.verdict)},
          {"dsn", plan.dsn},
          {"reason", plan.reason},
          {"implicit_mx", plan.implicit_mx},
          {"targets", targets}};
}

void PrintText(const outbound::RoutePlan& plan) {
  if (plan.verdict != outbound::Verdict::kRoute) {
    std::printf("%s: %s %s %s\n", plan.domain.c_str(), outbound::VerdictName(plan.verdict),
                plan.dsn.c_str(), plan.reason.c_str());
    return;
  }
  std::printf("%s: route%s\n", plan.domain.c_str(), plan.implicit_mx ? " (no MX: implicit)" : "");
  int i = 0;
  for (const outbound::RouteTarget& t : plan.targets) {
    std::printf("  %2d  pref %-5u %-40s %s\n", ++i, static_cast<unsigned>(t.preference),
                t.host.c_str(), t.address.c_str());
  }
}

}  // namespace

int RunDnsRoute(const DnsRouteOptions& options) {
  Result<node::Config> config = node::LoadConfig(options.config);
  if (!config.ok()) {
    std::fprintf(stderr, "porcupine: %s\n", config.status().message().c_str());
    return 2;
  }
  asio::io_context io;
  auto resolver = outbound::DnsResolver::Create(io.get_executor(), config->dns);
  if (!resolver.ok()) {
    std::fprintf(stderr, "porcupine: dns: %s\n", resolver.status().message().c_str());
    return 2;
  }
  outbound::SelfIdentity self{config->dns.own_names, config->dns.own_addresses};
  self.names.push_back(config->mail.hostname);
  std::mt19937_64 rng(options.seed != 0 ? options.seed : std::random_device{}());
  outbound::RoutePlan plan;
  bool planned = false;
  auto done = [&io, &plan, &planned](std::exception_ptr e, outbound::RoutePlan p) {
    planned = !e;
    if (planned) plan = std::move(p);
    io.stop();  // the resolver's descriptor watch would keep run() going
  };
  asio::co_spawn(io,
                 outbound::ResolveRoute(*resolver, options.domain, self, config->dns.limits, rng),
                 std::move(done));
  io.run();
  if (!planned) {
    std::fprintf(stderr, "porcupine: dns route %s: no plan\n", options.domain.c_str());
    return kExitTemporary;
  }
  if (options.json) {
    std::cout << ToJson(plan).dump() << "\n";
  } else {
    PrintText(plan);
  }
  switch (plan.verdict) {
    case outbound::Verdict::kRoute:
      return 0;
    case outbound::Verdict::kTemporary:
      return kExitTemporary;
    case outbound::Verdict::kPermanent:
      return 1;
  }
  return 1;
}

}  // namespace porcupine::cli
