// Internal to mime/: RFC 5322 address-list parsing for ENVELOPE and SEARCH,
// following Dovecot's lib-mail message-address rules so that broken input
// yields the same (name adl mailbox host) tuples Dovecot sends.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::mime {

// One element of an IMAP address list. nullopt is NIL. A group start has
// mailbox = the group's name and no host; a group end has every field unset.
// Values are raw: display names keep their RFC 2047 encoded-words.
struct AddressItem {
  enum class Kind { kMailbox, kGroupStart, kGroupEnd };
  Kind kind = Kind::kMailbox;
  std::optional<std::string> name;
  std::optional<std::string> route;  // "@a,@b" source route (obsolete syntax)
  std::optional<std::string> mailbox;
  std::optional<std::string> host;
  bool invalid = false;  // the input was not valid syntax here
};

struct AddressParseOptions {
  // Fill a missing mailbox / host (or an empty one in broken syntax) with
  // "MISSING_MAILBOX" / "MISSING_DOMAIN", as Dovecot's IMAP envelope does
  // (a NIL host would read as a group marker).
  bool fill_missing = true;
  // Stop after this many addresses (a hostile header can hold millions).
  size_t max_addresses = 10000;
};

// Parses an unfolded or folded header value. Never fails: garbage yields
// what could be read, possibly nothing (an empty list is NIL in IMAP).
std::vector<AddressItem> ParseAddressList(std::string_view value,
                                          const AddressParseOptions& options = {});

}  // namespace porcupine::mime
