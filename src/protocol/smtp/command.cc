#include "protocol/smtp/command.h"

#include <limits>

namespace porcupine::smtp {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool IsKeyword(std::string_view k) {
  if (k.empty() || !IsAlnum(k[0])) return false;
  for (char c : k) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

// esmtp-value = 1*(%d33-60 / %d62-126)
bool IsValue(std::string_view v) {
  if (v.empty()) return false;
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '=') return false;
  }
  return true;
}

// SIZE value: 1*20DIGIT. Values beyond uint64 saturate, so they are refused by
// the size limit instead of looking small after wrap-around.
std::optional<uint64_t> ParseSize(std::string_view v) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  uint64_t n = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    n = (n > (kMax - d) / 10) ? kMax : n * 10 + d;
  }
  return n;
}

struct Param {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

std::optional<Param> SplitParam(std::string_view p) {
  size_t eq = p.find('=');
  Param out{p.substr(0, eq), std::nullopt};
  if (eq != std::string_view::npos) out.value = p.substr(eq + 1);
  if (!IsKeyword(out.keyword) || (out.value && !IsValue(*out.value))) return std::nullopt;
  return out;
}

ArgError Fail(ArgError::Kind kind, std::string_view param = {}) {
  return ArgError{kind, std::string(param)};
}

// Applies one MAIL parameter; nullopt when accepted.
std::optional<ArgError> ApplyMailParam(std::string_view text, MailArgs* mail) {
  std::optional<Param> p = SplitParam(text);
  if (!p) return Fail(ArgError::Kind::kParamSyntax, text);
  if (EqualsIgnoreCase(p->keyword, "SIZE")) {
    std::optional<uint64_t> size = p->value ? ParseSize(*p->value) : std::nullopt;
    if (!size || mail->size) return Fail(ArgError::Kind::kParamSyntax, text);
    mail->size = size;
  } else if (EqualsIgnoreCase(p->keyword, "BODY")) {
    if (!p->value || mail->body != BodyType::kUnspecified) {
      return Fail(ArgError::Kind::kParamSyntax, text);
    }
    if (EqualsIgnoreCase(*p->value, "7BIT")) {
      mail->body = BodyType::k7Bit;
    } else if (EqualsIgnoreCase(*p->value, "8BITMIME")) {
      mail->body = BodyType::k8BitMime;
    } else {
      return Fail(ArgError::Kind::kParamUnsupported, text);  // BINARYMIME needs CHUNKING
    }
  } else if (EqualsIgnoreCase(p->keyword, "SMTPUTF8")) {
    if (p->value || mail->smtputf8) return Fail(ArgError::Kind::kParamSyntax, text);
    mail->smtputf8 = true;
  } else if (EqualsIgnoreCase(p->keyword, "AUTH")) {
    // RFC 4954 §5: the identity a relaying client vouches for. Accepted
    // and ignored: we are the final delivery, never a relay that would
    // pass it on.
    if (!p->value || mail->auth_param) return Fail(ArgError::Kind::kParamSyntax, text);
    mail->auth_param = true;
  } else {
    return Fail(ArgError::Kind::kParamUnsupported, text);
  }
  return std::nullopt;
}

// Strips "FROM:" / "TO:" (case-insensitive); spaces after the colon are
// tolerated because common clients send "MAIL FROM: <a@b>".
std::optional<std::string_view> StripPrefix(std::string_view args, std::string_view prefix) {
  if (args.size() < prefix.size() || !EqualsIgnoreCase(args.substr(0, prefix.size()), prefix)) {
    return std::nullopt;
  }
  args.remove_prefix(prefix.size());
  while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  return args;
}

// Parses "<path>[ params]" after the prefix: the path, then the remainder
// (which must be empty or start with a space).
std::variant<Path, ArgError> ParsePathPart(std::string_view* rest, bool allow_postmaster) {
  size_t used = 0;
  std::optional<Path> path = ParsePath(*rest, allow_postmaster, &used);
  if (!path) return Fail(ArgError::Kind::kPath);
  rest->remove_prefix(used);
  if (!rest->empty() && rest->front() != ' ') return Fail(ArgError::Kind::kSyntax);
  return *std::move(path);
}

// Splits parameters on runs of spaces, handing each to `apply`.
template <typename Apply>
std::optional<ArgError> ForEachParam(std::string_view rest, Apply apply) {
  while (true) {
    rest = TrimSpaces(rest);
    if (rest.empty()) return std::nullopt;
    size_t sp = rest.find(' ');
    if (auto err = apply(rest.substr(0, sp))) return err;
    if (sp == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(sp);
  }
}

}  // namespace

CommandLine SplitCommand(std::string_view line) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return {line, {}};
  return {line.substr(0, sp), TrimSpaces(line.substr(sp + 1))};
}

MailParse ParseMailArgs(std::string_view args) {
  std::optional<std::string_view> rest = StripPrefix(args, "FROM:");
  if (!rest || rest->empty()) return Fail(ArgError::Kind::kSyntax);
  auto path = ParsePathPart(&*rest, /*allow_postmaster=*/false);
  if (auto* err = std::get_if<ArgError>(&path)) return *err;
  MailArgs mail;
  mail.path = std::get<Path>(std::move(path));
  auto err = ForEachParam(*rest, [&](std::string_view p) { return ApplyMailParam(p, &mail); });
  if (err) return *err;
  return mail;
}

RcptParse ParseRcptArgs(std::string_view args) {
  std::optional<std::string_view> rest = StripPrefix(args, "TO:");
  if (!rest || rest->empty()) return Fail(ArgError::Kind::kSyntax);
  auto path = ParsePathPart(&*rest, /*allow_postmaster=*/true);
  if (auto* err = std::get_if<ArgError>(&path)) return *err;
  RcptArgs rcpt;
  rcpt.path = std::get<Path>(std::move(path));
  if (rcpt.path.mailbox.empty()) return Fail(ArgError::Kind::kPath);
  auto err = ForEachParam(*rest, [](std::string_view p) -> std::optional<ArgError> {
    if (!SplitParam(p)) return Fail(ArgError::Kind::kParamSyntax, p);
    return Fail(ArgError::Kind::kParamUnsupported, p);
  });
  if (err) return *err;
  return rcpt;
}

}  // namespace porcupine::smtp
