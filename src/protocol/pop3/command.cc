#include "protocol/pop3/command.h"

#include <sodium.h>

#include <algorithm>

namespace porcupine::pop3 {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool IsControlOrSpace(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// Splits "authzid NUL authcid NUL passwd"; exactly two NULs.
SaslPlainParse SplitPlainMessage(std::string_view msg) {
  size_t first = msg.find('\0');
  if (first == std::string_view::npos) return SaslError::kMalformed;
  size_t second = msg.find('\0', first + 1);
  if (second == std::string_view::npos) return SaslError::kMalformed;
  if (msg.find('\0', second + 1) != std::string_view::npos) return SaslError::kMalformed;
  std::string_view authzid = msg.substr(0, first);
  std::string_view authcid = msg.substr(first + 1, second - first - 1);
  std::string_view password = msg.substr(second + 1);
  if (!IsValidUserName(authcid) || password.empty()) return SaslError::kMalformed;
  if (!authzid.empty() && authzid != authcid) return SaslError::kAuthzid;
  return PlainCredentials{std::string(authcid), std::string(password)};
}

}  // namespace

CommandLine SplitCommand(std::string_view line) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return {line, {}};
  return {line.substr(0, sp), line.substr(sp + 1)};
}

std::vector<std::string_view> SplitArgs(std::string_view rest) {
  std::vector<std::string_view> args;
  size_t pos = 0;
  while (pos < rest.size()) {
    if (rest[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = std::min(rest.find(' ', pos), rest.size());
    args.push_back(rest.substr(pos, end - pos));
    pos = end;
  }
  return args;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

std::optional<uint64_t> ParseNumber(std::string_view text) {
  if (text.empty() || text.size() > kMaxArgument) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

bool IsValidUserName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxUserName &&
         std::none_of(name.begin(), name.end(), IsControlOrSpace);
}

bool IsValidUniqueId(std::string_view uid) {
  return !uid.empty() && uid.size() <= 70 &&
         std::all_of(uid.begin(), uid.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

SaslPlainParse ParseSaslPlain(std::string_view base64) {
  if (base64.empty()) return SaslError::kMalformed;
  // Three decoded bytes per four encoded ones; never more.
  std::string decoded(base64.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                             base64.data(), base64.size(), /*ignore=*/nullptr, &len, &end,
                             sodium_base64_VARIANT_ORIGINAL);
  SaslPlainParse result = SaslError::kBadBase64;
  if (rc == 0 && end == base64.data() + base64.size()) {
    result = SplitPlainMessage(std::string_view(decoded.data(), len));
  }
  sodium_memzero(decoded.data(), decoded.size());  // it held the password
  return result;
}

}  // namespace porcupine::pop3
