#include "protocol/smtp/path.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

namespace porcupine::smtp {
namespace {

bool IsAsciiAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsAtext(unsigned char c) {
  return IsAsciiAlnum(c) || (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// Dot-string, leniently: any mix of atext and dots, because "first..last" and
// "trailing.@" addresses exist in the wild and refusing them loses real mail.
bool IsValidDotString(std::string_view s, bool* non_ascii) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      *non_ascii = true;
    } else if (!IsAtext(c) && c != '.') {
      return false;
    }
  }
  return true;
}

// Returns the length of the quoted string at the start of `s` (quotes
// included), or 0 when it is not a valid qcontentSMTP sequence.
size_t QuotedStringLength(std::string_view s, bool* non_ascii) {
  if (s.empty() || s[0] != '"') return 0;
  for (size_t i = 1; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i >= s.size()) return 0;
      auto q = static_cast<unsigned char>(s[i]);
      if (q < 32 || q > 126) return 0;
    } else if (c >= 0x80) {
      *non_ascii = true;
    } else if (c < 32 || c == 127) {
      return 0;
    }
  }
  return 0;
}

bool IsValidLabel(std::string_view label, bool* non_ascii) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char ch : label) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      *non_ascii = true;
    } else if (!IsAsciiAlnum(c) && c != '-') {
      return false;
    }
  }
  return true;
}

bool IsValidGeneralLiteral(std::string_view inner) {
  size_t colon = inner.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == inner.size()) return false;
  for (char ch : inner.substr(0, colon)) {
    if (!IsAsciiAlnum(static_cast<unsigned char>(ch)) && ch != '-') return false;
  }
  for (char ch : inner.substr(colon + 1)) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']') return false;
  }
  return true;
}

bool IsValidAddressLiteral(std::string_view lit) {
  if (lit.size() < 3 || lit.front() != '[' || lit.back() != ']') return false;
  std::string inner(lit.substr(1, lit.size() - 2));
  unsigned char buf[16];
  if (inner.size() > 5 && EqualsIgnoreCase(std::string_view(inner).substr(0, 5), "IPv6:")) {
    return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
  }
  if (inner.find(':') != std::string::npos) return IsValidGeneralLiteral(inner);
  return inet_pton(AF_INET, inner.c_str(), buf) == 1;
}

// Source route "@a,@b:" (RFC 5321 Appendix C: accept and ignore). Returns the
// offset just past the ':' or npos when malformed.
size_t SkipSourceRoute(std::string_view inner) {
  size_t colon = std::string_view::npos;
  int brackets = 0;
  for (size_t i = 0; i < inner.size(); ++i) {
    if (inner[i] == '[') ++brackets;
    if (inner[i] == ']') --brackets;
    if (inner[i] == ':' && brackets == 0) {
      colon = i;
      break;
    }
  }
  if (colon == std::string_view::npos) return colon;
  std::string_view route = inner.substr(0, colon);
  while (!route.empty()) {
    size_t comma = route.find(',');
    std::string_view hop = route.substr(0, comma);
    bool ignored = false;
    if (hop.size() < 2 || hop[0] != '@' || !IsValidDomain(hop.substr(1), &ignored)) {
      return std::string_view::npos;
    }
    if (comma == std::string_view::npos) break;
    route.remove_prefix(comma + 1);
    if (route.empty()) return std::string_view::npos;
  }
  return colon + 1;
}

// Offset of the '>' closing a path that starts with '<', skipping quoted
// strings (a quoted local part may contain '>'); npos when absent.
size_t FindPathEnd(std::string_view in) {
  bool quoted = false;
  for (size_t i = 1; i < in.size(); ++i) {
    char c = in[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

std::optional<Path> MailboxPath(std::string_view text, bool allow_bare_postmaster) {
  Path path;
  if (allow_bare_postmaster && EqualsIgnoreCase(text, "postmaster")) {
    path.mailbox = "postmaster";
    return path;
  }
  if (!IsValidMailbox(text, &path.non_ascii)) return std::nullopt;
  path.mailbox = std::string(text);
  return path;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

bool IsValidUtf8(std::string_view s) {
  static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t trail;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      trail = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      trail = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      trail = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= trail) return false;
    for (size_t k = 1; k <= trail; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < kMinForLength[trail] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += trail + 1;
  }
  return true;
}

bool IsValidDomain(std::string_view domain, bool* non_ascii) {
  if (domain.empty() || domain.size() > 255) return false;
  if (domain.front() == '[') return IsValidAddressLiteral(domain);
  bool utf8 = false;
  while (true) {
    size_t dot = domain.find('.');
    if (!IsValidLabel(domain.substr(0, dot), &utf8)) return false;
    if (dot == std::string_view::npos) break;
    domain.remove_prefix(dot + 1);
  }
  if (utf8) *non_ascii = true;
  return true;
}

bool IsValidMailbox(std::string_view mailbox, bool* non_ascii) {
  if (mailbox.empty() || mailbox.size() > kMaxMailboxOctets) return false;
  bool utf8 = false;
  size_t at;
  if (mailbox[0] == '"') {
    at = QuotedStringLength(mailbox, &utf8);
    if (at == 0 || at >= mailbox.size() || mailbox[at] != '@') return false;
  } else {
    at = mailbox.find('@');
    if (at == std::string_view::npos || !IsValidDotString(mailbox.substr(0, at), &utf8)) {
      return false;
    }
  }
  if (!IsValidDomain(mailbox.substr(at + 1), &utf8)) return false;
  if (utf8 && !IsValidUtf8(mailbox)) return false;
  if (utf8) *non_ascii = true;
  return true;
}

std::optional<Path> ParsePath(std::string_view in, bool allow_bare_postmaster, size_t* consumed) {
  if (in.empty()) return std::nullopt;
  if (in[0] != '<') {
    // Bare mailbox: tolerated because some senders omit the brackets.
    std::string_view token = in.substr(0, in.find(' '));
    auto path = MailboxPath(token, allow_bare_postmaster);
    if (path) *consumed = token.size();
    return path;
  }
  size_t end = FindPathEnd(in);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view inner = in.substr(1, end - 1);
  if (!inner.empty() && inner[0] == '@') {
    size_t skip = SkipSourceRoute(inner);
    if (skip == std::string_view::npos) return std::nullopt;
    inner.remove_prefix(skip);
    if (inner.empty()) return std::nullopt;
  }
  std::optional<Path> path = inner.empty() ? Path{} : MailboxPath(inner, allow_bare_postmaster);
  if (path) *consumed = end + 1;
  return path;
}

}  // namespace porcupine::smtp
