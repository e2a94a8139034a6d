#include "outbound/route_resolve.h"

#include <vector>

#include "core/async.h"

namespace porcupine::outbound {

asio::awaitable<RoutePlan> ResolveRoute(std::shared_ptr<DnsResolver> resolver, std::string domain,
                                        SelfIdentity self, RouteLimits limits,
                                        std::mt19937_64& rng) {
  std::optional<RoutePlan> direct = PlanWithoutDns(domain, self);
  if (direct) co_return *direct;
  std::string name = NormalizeName(domain);
  MxAnswer mx = co_await resolver->LookupMx(name);
  MxStage stage = PlanMx(name, mx, self, limits, rng);
  if (stage.verdict != Verdict::kRoute) co_return PlanFromStage(stage);

  // One task per (host, family); hosts that name an address need none.
  struct Ask {
    std::string host;
    bool v6;
  };
  std::vector<Ask> asks;
  for (const MxHost& h : stage.hosts) {
    if (!h.literal.empty()) continue;
    if (limits.families != AddressFamilies::kIpv6Only) asks.push_back({h.name, false});
    if (limits.families != AddressFamilies::kIpv4Only) asks.push_back({h.name, true});
  }
  std::vector<asio::awaitable<AddressAnswer>> tasks;
  for (const Ask& a : asks) tasks.push_back(resolver->LookupAddresses(a.host, a.v6));
  std::vector<AddressAnswer> answers = co_await WhenAll(std::move(tasks));

  std::map<std::string, HostAnswers> by_host;
  for (size_t i = 0; i < asks.size(); ++i) {
    HostAnswers& h = by_host[asks[i].host];
    (asks[i].v6 ? h.v6 : h.v4) = std::move(answers[i]);
  }
  co_return PlanAddresses(stage, by_host, self, limits);
}

}  // namespace porcupine::outbound
