// Options of outbound destination resolution: the [dns] section of the node
// configuration (docs/config.md, docs/outbound.md "DNS"). Plain data with
// documented defaults; node/config.cc reads it from TOML.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace porcupine::outbound {

// Which address records are looked up for a mail exchanger.
enum class AddressFamilies { kAny, kIpv4Only, kIpv6Only };

// Which family is tried first among one host's addresses.
enum class AddressPreference { kIpv6, kIpv4 };

// The limits of one route plan (docs/outbound.md "Limits").
struct RouteLimits {
  // MX hosts whose addresses are looked up, best preference first; the rest
  // are dropped. Bounds the DNS work one domain can cause.
  size_t max_mx_hosts = 10;
  // Addresses in one plan, across all hosts (Postfix smtp_mx_address_limit).
  size_t max_addresses = 5;
  AddressFamilies families = AddressFamilies::kAny;
  AddressPreference preference = AddressPreference::kIpv6;
};

struct DnsOptions {
  // Resolvers to ask, "host:port", "[v6]:port" or a bare address (port 53).
  // Empty: the system resolver, i.e. the nameservers of /etc/resolv.conf.
  std::vector<std::string> servers;
  // One query (an MX, A or AAAA lookup) not answered by then is a temporary
  // failure (4.4.3).
  std::chrono::milliseconds timeout{10000};
  // Names under which this cluster receives mail besides mail.hostname (its
  // own MX host names): an MX record naming one of them is this cluster
  // (RFC 5321 §5.1), and it and every worse MX are dropped.
  std::vector<std::string> own_names;
  // Addresses of this cluster's SMTP listeners as others see them: an MX
  // host with one of them is this cluster too.
  std::vector<std::string> own_addresses;
  RouteLimits limits;
};

// One resolver from DnsOptions::servers.
struct DnsServer {
  std::string address;  // numeric IPv4 or IPv6, no brackets
  uint16_t port = 53;
};

// Parses "127.0.0.1:5353", "[::1]:5353", "127.0.0.1" or "::1" (port 53).
// InvalidArgument when the address is not numeric or the port is not 1-65535:
// a resolver is named by address, never by a name that would need a resolver.
Result<DnsServer> ParseDnsServer(const std::string& text);

// True when `text` is a numeric IPv4 or IPv6 address (no brackets).
bool IsIpAddress(const std::string& text);

}  // namespace porcupine::outbound
