// `porcupine dns route DOMAIN --config FILE`: prints the route plan outbound
// mail to DOMAIN would follow (docs/outbound.md "DNS"), asking the resolvers
// of the file's [dns] section. For operators checking a destination, and for
// the tests of the resolver against a real DNS server.
#pragma once

#include <cstdint>
#include <string>

namespace porcupine::cli {

struct DnsRouteOptions {
  std::string config;  // node configuration file: its [dns] and mail.hostname are used
  std::string domain;  // a domain name or an address literal ("[192.0.2.1]")
  bool json = false;   // print one JSON object instead of text
  uint64_t seed = 0;   // shuffles equal MX preferences; 0 = a random seed
};

// Exit status: 0 a route, 75 a temporary failure (EX_TEMPFAIL), 1 a
// permanent one, 2 an unusable configuration.
int RunDnsRoute(const DnsRouteOptions& options);

}  // namespace porcupine::cli
