// POP3 command-line parsing (RFC 1939 §3, RFC 5034 AUTH PLAIN).
//
// Pure functions over one command line without its CRLF. They never fail in
// a way that throws: a malformed argument gives std::nullopt or a typed
// error, and the session decides the reply and whether it counts as an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace porcupine::pop3 {

// RFC 1939 §3: keywords are at most 4 characters, arguments at most 40. A
// user name may be a full address, so it gets more room.
inline constexpr size_t kMaxArgument = 40;
inline constexpr size_t kMaxUserName = 255;

// A command line split into its keyword and the rest. Views into the line.
struct CommandLine {
  std::string_view verb;  // as sent; match with EqualsIgnoreCase
  std::string_view rest;  // everything after the first space, untouched; may be empty
};

// Splits at the first space. Never fails: an empty line gives an empty verb.
CommandLine SplitCommand(std::string_view line);

// Splits arguments at runs of spaces; leading and trailing spaces are
// dropped. Views into `rest`.
std::vector<std::string_view> SplitArgs(std::string_view rest);

// ASCII case-insensitive comparison.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Strict decimal: 1..kMaxArgument ASCII digits, no sign, no spaces, no
// overflow. Returns std::nullopt otherwise. Zero is returned as 0; whether it
// names a message is the caller's business.
std::optional<uint64_t> ParseNumber(std::string_view text);

// A user name for USER: 1..kMaxUserName bytes, none of them a control
// character or a space.
bool IsValidUserName(std::string_view name);

// RFC 1939 §7 unique-id: 1..70 characters in 0x21..0x7E.
bool IsValidUniqueId(std::string_view uid);

// Decoded SASL PLAIN credentials (RFC 4616).
struct PlainCredentials {
  std::string authcid;   // the user name
  std::string password;  // never empty
};

enum class SaslError {
  kBadBase64,  // not strict, padded RFC 4648 base64
  kMalformed,  // empty, or not "[authzid] NUL authcid NUL passwd" with a valid user
               // name (IsValidUserName) as authcid and a non-empty passwd
  kAuthzid,    // authzid given and different from authcid (no proxy logins)
};

using SaslPlainParse = std::variant<PlainCredentials, SaslError>;

// Decodes one base64 SASL PLAIN response (RFC 5034's "=" for an empty
// initial response must be mapped to "" by the caller). The decoded buffer
// is wiped before returning.
SaslPlainParse ParseSaslPlain(std::string_view base64);

}  // namespace porcupine::pop3
