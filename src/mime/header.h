// Internal to mime/: a part's header block split into fields, and the MIME
// Content-* fields parsed the way Dovecot's lib-mail does (values kept as
// written, RFC 2231 continuations merged, broken input tolerated), because
// BODYSTRUCTURE must match what IMAP clients get from Dovecot.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::mime {

// Views into the message's raw bytes; valid while they live.
struct HeaderField {
  std::string_view name;   // trailing whitespace removed; the whole line if it has no ':'
  std::string_view value;  // after ':' and leading blanks; folded lines kept; no final EOL
  std::string_view raw;    // the whole field, continuation lines and final EOL included
};

// Splits a header block (fields, optionally followed by the empty line) into
// fields. A leading continuation line becomes a field with an empty name.
std::vector<HeaderField> SplitHeaderFields(std::string_view block);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Removes line breaks from a folded value (RFC 5322 §2.2.3 unfolding) and
// the blanks around it, and inserts a space where a break was not followed
// by one (Dovecot's "nolf" rule for IMAP strings).
std::string Unfold(std::string_view value);

struct MimeParam {
  std::string name;  // as written; "name*" when RFC 2231 encoded
  std::string value;
};

// The MIME fields of one part, as BODYSTRUCTURE reports them. Values are raw
// (not RFC 2047/2231 decoded); absent fields are nullopt.
struct ContentInfo {
  bool present = false;  // a Content-Type field counted (else text/plain applies)
  // As written. Both empty when Content-Type was unparsable ("", "type/"),
  // which Dovecot reports as "" ""; subtype alone empty for "type" alone.
  std::string type;
  std::string subtype;
  std::vector<MimeParam> params;
  std::optional<std::string> encoding;  // Content-Transfer-Encoding token
  std::optional<std::string> id, description, md5, location;
  std::optional<std::string> disposition;
  std::vector<MimeParam> disposition_params;
  std::vector<std::string> languages;  // empty: NIL

  // A parameter's value (case-insensitive name), nullptr when absent.
  const std::string* Param(std::string_view name) const;
};

// Uses the first occurrence of each Content-* field.
ContentInfo ParseContentInfo(const std::vector<HeaderField>& fields);

// The Content-Type parameter list after "type/subtype" (exposed for tests).
std::vector<MimeParam> ParseMimeParams(std::string_view text);

}  // namespace porcupine::mime
