// SMTP command-line parsing (RFC 5321 §4.1, RFC 1869 ESMTP parameters).
//
// Pure functions over one command line without its CRLF; the session decides
// what a parse failure means for the dialogue (which reply, whether it
// counts as an error).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/smtp/path.h"

namespace porcupine::smtp {

// A command line split into its verb and arguments. Views into the line.
struct CommandLine {
  std::string_view verb;  // as sent; match case-insensitively
  std::string_view args;  // after the first space, surrounding spaces trimmed; may be empty
};

// Splits at the first space. Never fails: an empty line gives an empty verb.
CommandLine SplitCommand(std::string_view line);

enum class BodyType { kUnspecified, k7Bit, k8BitMime };

// MAIL FROM:<reverse-path> [SP params] (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8,
// RFC 4954 AUTH).
struct MailArgs {
  Path path;                     // mailbox empty for the null reverse-path <>
  std::optional<uint64_t> size;  // declared size; UINT64_MAX when the number overflows
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
  bool auth_param = false;  // AUTH=<mailbox> was given (its value is not used)
};

// RCPT TO:<forward-path>. No RCPT parameters are supported (no DSN).
struct RcptArgs {
  Path path;  // never the null path
};

// Why a MAIL or RCPT argument string was refused.
struct ArgError {
  enum class Kind {
    kSyntax,           // missing "FROM:"/"TO:" or garbage after the path: 501 5.5.4
    kPath,             // the path itself is malformed: 501 5.1.7 (MAIL) / 5.1.3 (RCPT)
    kParamSyntax,      // malformed or duplicate parameter: 501 5.5.4
    kParamUnsupported  // unknown parameter or value: 555 5.5.4
  };
  Kind kind;
  std::string param;  // the offending parameter for kParam*, else empty
};

using MailParse = std::variant<MailArgs, ArgError>;
using RcptParse = std::variant<RcptArgs, ArgError>;

// Parses the arguments of MAIL (everything after "MAIL ").
MailParse ParseMailArgs(std::string_view args);
// Parses the arguments of RCPT (everything after "RCPT ").
RcptParse ParseRcptArgs(std::string_view args);

}  // namespace porcupine::smtp
