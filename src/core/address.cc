#include "core/address.h"

#include <algorithm>

namespace porcupine {

std::optional<std::string> CanonicalAddress(std::string_view address) {
  constexpr size_t kMaxAddress = 254;  // RFC 5321 §4.5.3.1.3 path limit minus brackets
  if (address.empty() || address.size() > kMaxAddress) return std::nullopt;
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return std::nullopt;
  std::string out;
  out.reserve(address.size());
  for (char c : address) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::nullopt;
    out.push_back(u < 0x80 ? static_cast<char>(std::tolower(u)) : c);
  }
  if (std::count(out.begin() + static_cast<long>(at) + 1, out.end(), '@') != 0) return std::nullopt;
  return out;
}

std::string_view DomainOf(std::string_view canonical) {
  size_t at = canonical.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : canonical.substr(at + 1);
}

std::optional<std::string> LoginToAddress(std::string_view login, std::string_view default_domain) {
  if (login.find('@') == std::string_view::npos && !default_domain.empty()) {
    std::string full(login);
    full += '@';
    full += default_domain;
    return CanonicalAddress(full);
  }
  return CanonicalAddress(login);
}

}  // namespace porcupine
