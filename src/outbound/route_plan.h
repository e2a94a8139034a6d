// The routing planner of outbound mail: from DNS answers to the ordered list
// of addresses to try for one destination domain (RFC 5321 §5.1, RFC 7505).
// Pure: no I/O, no clock; randomness is injected. The driver that asks DNS
// and feeds these functions is outbound/route_resolve.h; the rules and their
// reasons are in docs/outbound.md "DNS".
//
// Planning is two steps because the address lookups depend on the MX answer:
//   MxStage stage = PlanMx(domain, mx_answer, self, limits, rng);
//   ... look up A/AAAA of every stage.hosts[i] that has no literal ...
//   RoutePlan plan = PlanAddresses(stage, answers, self, limits);
// A domain that is an address literal ("[192.0.2.1]") or not a DNS name at
// all skips both: PlanWithoutDns(domain, self).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "outbound/dns_options.h"

namespace porcupine::outbound {

// How one DNS query ended.
enum class LookupStatus {
  kOk,        // NOERROR with records of the asked type
  kNoData,    // NOERROR without records of the asked type (the name exists)
  kNxDomain,  // the name does not exist (RCODE 3)
  kServFail,  // SERVFAIL, REFUSED, a DNSSEC-bogus answer, a library error
  kTimeout,   // no answer within DnsOptions::timeout
};
const char* LookupStatusName(LookupStatus s);

struct MxRecord {
  uint16_t preference = 0;
  std::string exchange;  // as in DNS; "" or "." is the root (null MX)
};

struct MxAnswer {
  LookupStatus status = LookupStatus::kServFail;
  std::vector<MxRecord> records;  // only with kOk
  std::string error;              // with kServFail/kTimeout: what the resolver said
};

// The addresses of one name: text form, as inet_ntop writes them.
struct AddressAnswer {
  LookupStatus status = LookupStatus::kServFail;
  std::vector<std::string> addresses;  // only with kOk
  std::string error;
};

// A and AAAA of one host. A family not asked for (RouteLimits::families)
// stays kNoData.
struct HostAnswers {
  AddressAnswer v4{LookupStatus::kNoData, {}, {}};
  AddressAnswer v6{LookupStatus::kNoData, {}, {}};
};

// Who "we" are, to drop MX records that point back at this cluster.
struct SelfIdentity {
  std::vector<std::string> names;      // host names, any case, trailing dot or not
  std::vector<std::string> addresses;  // numeric addresses
};

enum class Verdict {
  kRoute,      // try the targets in order
  kTemporary,  // defer and retry later (4.x.x)
  kPermanent,  // bounce (5.x.x)
};
const char* VerdictName(Verdict v);

// The outcome of the MX step.
struct MxHost {
  std::string name;  // lower case, no trailing dot
  uint16_t preference = 0;
  bool implicit = false;  // no MX: the domain itself (RFC 5321 §5.1)
  std::string literal;    // the MX named an IP address: used as is, no lookup
};

struct MxStage {
  std::string domain;  // lower case, no trailing dot
  Verdict verdict = Verdict::kRoute;
  std::string dsn;     // enhanced status code when not kRoute ("5.1.10")
  std::string reason;  // human text when not kRoute
  // kRoute: hosts in the order to try, at most RouteLimits::max_mx_hosts.
  std::vector<MxHost> hosts;
  // The best preference in the MX set (before our own records were cut):
  // tells "we are the primary" (5.4.6) from "the better MXs do not resolve"
  // (4.4.4) when the address step finds us.
  uint16_t best_preference = 0;
  // MX records naming this cluster were dropped: we are a backup MX, so a
  // plan with no address left defers (4.4.4) rather than bounces.
  bool self_cut = false;
};

// One address to connect to, port 25.
struct RouteTarget {
  std::string host;  // the MX host name (for TLS peer names); the literal for literals
  uint16_t preference = 0;
  std::string address;  // numeric
  bool v6 = false;
};

struct RoutePlan {
  std::string domain;
  Verdict verdict = Verdict::kRoute;
  std::string dsn;
  std::string reason;
  std::vector<RouteTarget> targets;  // kRoute: non-empty, in order
  bool implicit_mx = false;          // the domain had no MX records
};

// Step 1. Sorts the MX set by preference, shuffles equal preferences with
// `rng`, recognises a null MX (5.1.10), an MX that names an address, an MX
// that names this cluster (drops it and every worse one; 5.4.6 when nothing
// is left), applies max_mx_hosts, and classifies failures: NXDOMAIN is
// permanent (5.1.2), SERVFAIL and timeouts temporary (4.4.3), no MX records an
// implicit MX of the domain itself.
MxStage PlanMx(const std::string& domain, const MxAnswer& mx, const SelfIdentity& self,
               const RouteLimits& limits, std::mt19937_64& rng);

// Step 2. `answers` maps MxHost::name to its lookups (hosts with a literal
// need none). Orders each host's addresses by family preference, drops
// duplicates, cuts at the first address of our own (as PlanMx does for
// names), applies max_addresses, and classifies a stage where no host has an
// address: temporary (4.4.3) if any lookup failed temporarily, else
// permanent (5.1.2 for an implicit MX whose name vanished, 5.4.4 otherwise).
// REQUIRES: stage.verdict == kRoute (other stages are returned as plans).
RoutePlan PlanAddresses(const MxStage& stage, const std::map<std::string, HostAnswers>& answers,
                        const SelfIdentity& self, const RouteLimits& limits);

// Copies a non-route stage into a plan (the driver's shortcut).
RoutePlan PlanFromStage(const MxStage& stage);

// The plans made without DNS. A domain written as an address literal (RFC
// 5321 §4.1.3: "[192.0.2.1]", "[IPv6:2001:db8::1]") routes to that address;
// one of our own addresses is a loop (5.4.6), a malformed literal permanent
// (5.1.2). A name that is not a DNS host name (empty, over 253 octets, a
// label over 63, characters other than letters, digits, '-', '_' and '.',
// which includes every non-ASCII name: no IDNA yet) is permanent (5.1.2).
// nullopt for a well-formed name: ask DNS.
std::optional<RoutePlan> PlanWithoutDns(const std::string& domain, const SelfIdentity& self);

// Lower case without the trailing dot: the form names are compared in.
std::string NormalizeName(const std::string& name);

}  // namespace porcupine::outbound
