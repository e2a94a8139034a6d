#include "outbound/dns_options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace porcupine::outbound {

bool IsIpAddress(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

Result<DnsServer> ParseDnsServer(const std::string& text) {
  DnsServer server;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("\"" + text + "\": missing ]");
    server.address = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Status::InvalidArgument("\"" + text + "\": junk after ]");
      port = rest.substr(1);
      if (port.empty()) return Status::InvalidArgument("\"" + text + "\": empty port");
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    size_t colon = text.find(':');
    server.address = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return Status::InvalidArgument("\"" + text + "\": empty port");
  } else {
    server.address = text;  // a bare IPv4 address, or a bare IPv6 address
  }
  if (!IsIpAddress(server.address)) {
    return Status::InvalidArgument("\"" + text + "\": must be a numeric IP address[:port]");
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return Status::InvalidArgument("\"" + text + "\": port must be 1-65535");
    }
    server.port = static_cast<uint16_t>(value);
  }
  return server;
}

}  // namespace porcupine::outbound
