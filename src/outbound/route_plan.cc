#include "outbound/route_plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace porcupine::outbound {
namespace {

bool IsTemporary(LookupStatus s) {
  return s == LookupStatus::kServFail || s == LookupStatus::kTimeout;
}

// The canonical text of a numeric address (so "::0:1" equals "::1"), or "".
std::string CanonicalIp(const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    return inet_ntop(AF_INET, buf, out, sizeof(out)) ? out : "";
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    return inet_ntop(AF_INET6, buf, out, sizeof(out)) ? out : "";
  }
  return "";
}

bool IsOwnName(const SelfIdentity& self, const std::string& normalized) {
  for (const std::string& n : self.names) {
    if (NormalizeName(n) == normalized) return true;
  }
  return false;
}

bool IsOwnAddress(const SelfIdentity& self, const std::string& address) {
  std::string canonical = CanonicalIp(address);
  for (const std::string& a : self.addresses) {
    if (!canonical.empty() && CanonicalIp(a) == canonical) return true;
  }
  return false;
}

MxStage Fail(MxStage st, Verdict v, std::string dsn, std::string reason) {
  st.verdict = v;
  st.dsn = std::move(dsn);
  st.reason = std::move(reason);
  st.hosts.clear();
  return st;
}

RoutePlan FailPlan(RoutePlan plan, Verdict v, std::string dsn, std::string reason) {
  plan.verdict = v;
  plan.dsn = std::move(dsn);
  plan.reason = std::move(reason);
  plan.targets.clear();
  return plan;
}

// Sorts by preference and shuffles each run of equal preferences (RFC 5321
// §5.1: "randomize them to spread the load"). Names order a run before the
// shuffle, so the order depends on the seed alone, not on the order the
// server sent (servers rotate their records).
void SortAndShuffle(std::vector<MxHost>& hosts, std::mt19937_64& rng) {
  std::sort(hosts.begin(), hosts.end(), [](const MxHost& a, const MxHost& b) {
    return a.preference != b.preference ? a.preference < b.preference : a.name < b.name;
  });
  for (size_t i = 0; i < hosts.size();) {
    size_t j = i;
    while (j < hosts.size() && hosts[j].preference == hosts[i].preference) ++j;
    std::shuffle(hosts.begin() + static_cast<std::ptrdiff_t>(i),
                 hosts.begin() + static_cast<std::ptrdiff_t>(j), rng);
    i = j;
  }
}

// The records of an MX answer as hosts; "." records are left out.
std::vector<MxHost> HostsOf(const std::vector<MxRecord>& records) {
  std::vector<MxHost> hosts;
  for (const MxRecord& r : records) {
    std::string name = NormalizeName(r.exchange);
    if (name.empty()) continue;
    MxHost h{name, r.preference, false, ""};
    if (IsIpAddress(name)) h.literal = CanonicalIp(name);
    hosts.push_back(std::move(h));
  }
  return hosts;
}

// Drops a repeated host name, keeping its best (first) occurrence.
void DropDuplicateHosts(std::vector<MxHost>& hosts) {
  std::set<std::string> seen;
  std::vector<MxHost> out;
  for (MxHost& h : hosts) {
    if (seen.insert(h.name).second) out.push_back(std::move(h));
  }
  hosts = std::move(out);
}

MxStage ImplicitMx(MxStage st, const SelfIdentity& self) {
  if (IsOwnName(self, st.domain)) {
    return Fail(st, Verdict::kPermanent, "5.4.6",
                "mail for " + st.domain + " loops back to myself");
  }
  MxHost h{st.domain, 0, true, ""};
  if (IsIpAddress(st.domain)) h.literal = CanonicalIp(st.domain);
  st.hosts.push_back(std::move(h));
  return st;
}

// A host's usable addresses, preferred family first, DNS order within one.
std::vector<std::pair<std::string, bool>> AddressesOf(const HostAnswers& a,
                                                      const RouteLimits& limits) {
  std::vector<std::pair<std::string, bool>> v4, v6;
  if (limits.families != AddressFamilies::kIpv6Only && a.v4.status == LookupStatus::kOk) {
    for (const std::string& s : a.v4.addresses) v4.emplace_back(s, false);
  }
  if (limits.families != AddressFamilies::kIpv4Only && a.v6.status == LookupStatus::kOk) {
    for (const std::string& s : a.v6.addresses) v6.emplace_back(s, true);
  }
  auto& first = limits.preference == AddressPreference::kIpv6 ? v6 : v4;
  auto& second = limits.preference == AddressPreference::kIpv6 ? v4 : v6;
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

std::string Describe(const std::string& host, const HostAnswers& a) {
  std::string d = host + ": A " + LookupStatusName(a.v4.status);
  if (!a.v4.error.empty()) d += " (" + a.v4.error + ")";
  d += ", AAAA " + std::string(LookupStatusName(a.v6.status));
  if (!a.v6.error.empty()) d += " (" + a.v6.error + ")";
  return d;
}

// Removes our own addresses and every worse target (RFC 5321 §5.1). Returns
// the preference cut at, or nullopt when none of the addresses is ours.
std::optional<uint16_t> CutAtSelf(std::vector<RouteTarget>& targets, const SelfIdentity& self) {
  for (const RouteTarget& t : targets) {
    if (!IsOwnAddress(self, t.address)) continue;
    uint16_t cut = t.preference;
    std::erase_if(targets, [cut](const RouteTarget& x) { return x.preference >= cut; });
    return cut;
  }
  return std::nullopt;
}

}  // namespace

const char* LookupStatusName(LookupStatus s) {
  switch (s) {
    case LookupStatus::kOk:
      return "ok";
    case LookupStatus::kNoData:
      return "nodata";
    case LookupStatus::kNxDomain:
      return "nxdomain";
    case LookupStatus::kServFail:
      return "servfail";
    case LookupStatus::kTimeout:
      return "timeout";
  }
  return "?";
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kRoute:
      return "route";
    case Verdict::kTemporary:
      return "temporary";
    case Verdict::kPermanent:
      return "permanent";
  }
  return "?";
}

std::string NormalizeName(const std::string& name) {
  std::string out = name;
  while (!out.empty() && out.back() == '.') out.pop_back();
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

MxStage PlanMx(const std::string& domain, const MxAnswer& mx, const SelfIdentity& self,
               const RouteLimits& limits, std::mt19937_64& rng) {
  MxStage st;
  st.domain = NormalizeName(domain);
  switch (mx.status) {
    case LookupStatus::kNxDomain:
      return Fail(st, Verdict::kPermanent, "5.1.2",
                  "domain " + st.domain + " does not exist (NXDOMAIN)");
    case LookupStatus::kServFail:
    case LookupStatus::kTimeout:
      return Fail(st, Verdict::kTemporary, "4.4.3",
                  std::string("MX lookup of ") + st.domain +
                      " failed: " + LookupStatusName(mx.status) +
                      (mx.error.empty() ? "" : " (" + mx.error + ")"));
    case LookupStatus::kNoData:
      return ImplicitMx(std::move(st), self);
    case LookupStatus::kOk:
      break;
  }
  if (mx.records.empty()) return ImplicitMx(std::move(st), self);
  std::vector<MxHost> hosts = HostsOf(mx.records);
  // RFC 7505: a single "MX 0 ." says the domain takes no mail. A set made
  // only of "." records says the same, less tidily; a "." among real hosts
  // is ignored.
  if (hosts.empty()) {
    return Fail(st, Verdict::kPermanent, "5.1.10",
                "domain " + st.domain + " does not accept mail (null MX)");
  }
  SortAndShuffle(hosts, rng);
  DropDuplicateHosts(hosts);
  st.best_preference = hosts.front().preference;
  for (const MxHost& h : hosts) {
    if (!IsOwnName(self, h.name)) continue;
    uint16_t cut = h.preference;
    std::erase_if(hosts, [cut](const MxHost& x) { return x.preference >= cut; });
    st.self_cut = true;
    break;
  }
  if (hosts.empty()) {
    return Fail(st, Verdict::kPermanent, "5.4.6",
                "mail for " + st.domain + " loops back to myself");
  }
  if (hosts.size() > limits.max_mx_hosts) hosts.resize(limits.max_mx_hosts);
  st.hosts = std::move(hosts);
  return st;
}

RoutePlan PlanFromStage(const MxStage& stage) {
  RoutePlan plan;
  plan.domain = stage.domain;
  plan.verdict = stage.verdict;
  plan.dsn = stage.dsn;
  plan.reason = stage.reason;
  return plan;
}

RoutePlan PlanAddresses(const MxStage& stage, const std::map<std::string, HostAnswers>& answers,
                        const SelfIdentity& self, const RouteLimits& limits) {
  RoutePlan plan = PlanFromStage(stage);
  if (stage.verdict != Verdict::kRoute) return plan;
  plan.implicit_mx = stage.hosts.size() == 1 && stage.hosts[0].implicit;
  bool any_temporary = false;
  bool implicit_nxdomain = false;
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const MxHost& h : stage.hosts) {
    std::vector<std::pair<std::string, bool>> addrs;
    if (!h.literal.empty()) {
      addrs.emplace_back(h.literal, h.literal.find(':') != std::string::npos);
    } else if (auto it = answers.find(h.name); it == answers.end()) {
      any_temporary = true;  // the driver did not look it up: try again later
      problems.push_back(h.name + ": not looked up");
    } else {
      addrs = AddressesOf(it->second, limits);
      if (addrs.empty()) {
        const HostAnswers& a = it->second;
        any_temporary |= IsTemporary(a.v4.status) || IsTemporary(a.v6.status);
        implicit_nxdomain |= h.implicit && (a.v4.status == LookupStatus::kNxDomain ||
                                            a.v6.status == LookupStatus::kNxDomain);
        problems.push_back(Describe(h.name, a));
      }
    }
    for (auto& [address, v6] : addrs) {
      std::string canonical = CanonicalIp(address);
      if (canonical.empty() || !seen.insert(canonical).second) continue;
      plan.targets.push_back(RouteTarget{h.name, h.preference, canonical, v6});
    }
  }
  bool self_cut = stage.self_cut;
  std::optional<uint16_t> cut = CutAtSelf(plan.targets, self);
  if (cut) self_cut = true;
  if (plan.targets.empty()) {
    std::string why;
    for (const std::string& p : problems) why += (why.empty() ? "" : "; ") + p;
    if (cut && *cut == stage.best_preference) {
      return FailPlan(plan, Verdict::kPermanent, "5.4.6",
                      "mail for " + plan.domain + " loops back to myself");
    }
    if (self_cut) {
      return FailPlan(
          plan, Verdict::kTemporary, "4.4.4",
          "unable to find primary relay for " + plan.domain + (why.empty() ? "" : ": " + why));
    }
    if (any_temporary) {
      return FailPlan(plan, Verdict::kTemporary, "4.4.3",
                      "address lookup for " + plan.domain + " failed: " + why);
    }
    if (implicit_nxdomain) {
      return FailPlan(plan, Verdict::kPermanent, "5.1.2",
                      "domain " + plan.domain + " does not exist: " + why);
    }
    return FailPlan(plan, Verdict::kPermanent, "5.4.4",
                    "no mail host for " + plan.domain + " has an address: " + why);
  }
  if (plan.targets.size() > limits.max_addresses) plan.targets.resize(limits.max_addresses);
  return plan;
}

namespace {

bool IsHostName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    if (++label > 63) return false;
  }
  return true;
}

}  // namespace

std::optional<RoutePlan> PlanWithoutDns(const std::string& domain, const SelfIdentity& self) {
  RoutePlan plan;
  plan.domain = domain;
  if (domain.empty() || domain.front() != '[') {
    if (IsHostName(NormalizeName(domain))) return std::nullopt;
    return FailPlan(plan, Verdict::kPermanent, "5.1.2", "bad domain name \"" + domain + "\"");
  }
  std::string inner = domain.size() >= 2 && domain.back() == ']'
                          ? domain.substr(1, domain.size() - 2)
                          : std::string();
  std::string address;
  bool v6 = false;
  unsigned char buf[16];
  if (inner.size() > 5 && NormalizeName(inner.substr(0, 5)) == "ipv6:") {
    address = inner.substr(5);
    v6 = inet_pton(AF_INET6, address.c_str(), buf) == 1;
    if (!v6) address.clear();
  } else if (inet_pton(AF_INET, inner.c_str(), buf) == 1) {
    address = inner;
  }
  if (address.empty()) {
    return FailPlan(plan, Verdict::kPermanent, "5.1.2", "bad address literal " + domain);
  }
  address = CanonicalIp(address);
  if (IsOwnAddress(self, address)) {
    return FailPlan(plan, Verdict::kPermanent, "5.4.6",
                    "mail for " + domain + " loops back to myself");
  }
  plan.targets.push_back(RouteTarget{address, 0, address, v6});
  return plan;
}

}  // namespace porcupine::outbound
