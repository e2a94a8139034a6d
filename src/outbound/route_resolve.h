// The driver of destination resolution: asks DNS what the planner
// (outbound/route_plan.h) needs and returns its plan. Thin on purpose: every
// decision is in the planner.
#pragma once

#include <asio.hpp>
#include <memory>
#include <random>
#include <string>

#include "outbound/dns_resolver.h"
#include "outbound/route_plan.h"

namespace porcupine::outbound {

// The plan for mail to `domain`: an address literal or a malformed name
// without DNS; else the MX lookup, then the A/AAAA lookups of every chosen
// host at once (AAAA only, A only or both per limits.families). Never fails
// as a coroutine: DNS trouble is a kTemporary or kPermanent plan.
// REQUIRES: `rng` outlives the coroutine and is used by no other thread
// meanwhile.
asio::awaitable<RoutePlan> ResolveRoute(std::shared_ptr<DnsResolver> resolver, std::string domain,
                                        SelfIdentity self, RouteLimits limits,
                                        std::mt19937_64& rng);

}  // namespace porcupine::outbound
