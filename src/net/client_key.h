// The key under which a client address is counted (login throttling,
// docs/security.md): an IPv4 address as is, an IPv6 address by its /64 (one
// subscriber usually holds a whole /64, so counting single IPv6 addresses
// would let one client change address at every attempt), an IPv4-mapped IPv6
// address as the IPv4 address.
#pragma once

#include <asio.hpp>
#include <string>

namespace porcupine::net {

// "192.0.2.7", "2001:db8:1:2::/64".
std::string ClientKey(const asio::ip::address& address);

}  // namespace porcupine::net
