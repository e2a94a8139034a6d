// Which mailbox gets the mail sent to an address. This is the one place where
// an RCPT address becomes a user: the recipient check and the delivery both
// call it, and aliases (a later issue) replace it.
//
// Pure functions, no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::mail {

// The local part every domain must accept, in any case (RFC 5321 §4.5.1).
inline constexpr std::string_view kPostmaster = "postmaster";

struct RecipientRules {
  std::vector<std::string> domains;  // local domains, lower case; the first is the default
  // Canonical address of the mailbox that gets the postmaster mail of every
  // local domain. REQUIRES: not empty (DefaultPostmaster when not configured).
  std::string postmaster;
};

// "postmaster@<first domain>", the postmaster mailbox when none is
// configured; "" when `domains` is empty.
std::string DefaultPostmaster(const std::vector<std::string>& domains);

// The canonical address (core/address.h) whose mailbox gets mail sent to
// `address`:
//  - "postmaster" without a domain (RFC 5321 §4.1.1.3) and
//    postmaster@<any local domain>, in any case: rules.postmaster;
//  - any other mailbox: its canonical form, whatever its domain (the caller
//    tells local from foreign domains).
// nullopt when `address` is not a mailbox (no domain, control characters, ...).
std::optional<std::string> ResolveRecipient(const RecipientRules& rules, std::string_view address);

}  // namespace porcupine::mail
