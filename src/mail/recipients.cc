#include "mail/recipients.h"

#include <algorithm>
#include <cctype>

#include "core/address.h"

namespace porcupine::mail {
namespace {

bool IsPostmaster(std::string_view local_part) {
  return std::equal(
      local_part.begin(), local_part.end(), kPostmaster.begin(), kPostmaster.end(),
      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

}  // namespace

std::string DefaultPostmaster(const std::vector<std::string>& domains) {
  if (domains.empty()) return "";
  return std::string(kPostmaster) + "@" + domains.front();
}

std::optional<std::string> ResolveRecipient(const RecipientRules& rules, std::string_view address) {
  if (IsPostmaster(address)) return rules.postmaster;
  std::optional<std::string> canonical = CanonicalAddress(address);
  if (!canonical) return std::nullopt;
  const std::string_view domain = DomainOf(*canonical);
  const std::string_view local = std::string_view(*canonical).substr(0, canonical->rfind('@'));
  const bool local_domain =
      std::find(rules.domains.begin(), rules.domains.end(), domain) != rules.domains.end();
  if (local_domain && local == kPostmaster) return rules.postmaster;
  return canonical;
}

}  // namespace porcupine::mail
