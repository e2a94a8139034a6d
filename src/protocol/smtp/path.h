// SMTP path and mailbox syntax (RFC 5321 §4.1.2, RFC 6531 for UTF-8).
//
// Pure functions: no allocation beyond the returned strings, no state. The
// grammar is applied with the leniency real senders need (consecutive or
// trailing dots in a local part, a path without angle brackets) but rejects
// anything that could break a header or a store key: control characters,
// spaces outside quotes, malformed UTF-8, overlong paths.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace porcupine::smtp {

// Longest mailbox accepted: RFC 5321 §4.5.3.1.3 allows 256 octets for a path
// including "<" and ">".
inline constexpr size_t kMaxMailboxOctets = 254;

struct Path {
  // "local@domain" exactly as sent, source route stripped; empty for the null
  // path "<>"; "postmaster" for a bare postmaster (see ParsePath).
  std::string mailbox;
  // The mailbox holds UTF-8 (only acceptable with SMTPUTF8).
  bool non_ascii = false;
};

// Parses the path at the start of `in`: "<mailbox>", "<@route,@route:mailbox>",
// "<>" or a bare mailbox without brackets (terminated by a space or the end).
// With `allow_bare_postmaster`, "<postmaster>" (any case) is accepted without a
// domain (RFC 5321 §4.5.1). On success sets *consumed to the number of bytes of
// `in` used. Returns nullopt on any syntax error. REQUIRES: consumed != nullptr.
std::optional<Path> ParsePath(std::string_view in, bool allow_bare_postmaster, size_t* consumed);

// Validates "local@domain" (dot-string or quoted local part; domain name or
// address literal). Sets *non_ascii when UTF-8 occurs. REQUIRES: non_ascii != nullptr.
bool IsValidMailbox(std::string_view mailbox, bool* non_ascii);

// Validates a domain name (LDH labels, UTF-8 U-labels allowed) or an address
// literal ("[192.0.2.1]", "[IPv6:2001:db8::1]", "[tag:content]").
bool IsValidDomain(std::string_view domain, bool* non_ascii);

// ASCII case-insensitive equality (verbs, keywords, "postmaster").
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Well-formed UTF-8 per RFC 3629 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace porcupine::smtp
