// Canonical user addresses: "local@domain", lower case. Users are keyed by
// this form everywhere (store keys, buckets, the admin API).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine {

// Lower-cases an address and checks its basic shape: one '@', a non-empty
// local part without control characters or spaces, a non-empty domain, at
// most 254 bytes. nullopt when malformed.
std::optional<std::string> CanonicalAddress(std::string_view address);

// The domain part of a canonical address.
std::string_view DomainOf(std::string_view canonical);

// Canonical address of a login name: a bare local part gets `default_domain`.
std::optional<std::string> LoginToAddress(std::string_view login, std::string_view default_domain);

}  // namespace porcupine
