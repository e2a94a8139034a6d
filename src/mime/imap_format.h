// Internal to mime/: the IMAP (RFC 3501 §7.4.2) forms of a parsed message:
// strings, ENVELOPE and BODY/BODYSTRUCTURE, written the way Dovecot writes
// them (field order, NIL rules, default charset, empty multiparts).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mime/header.h"
#include "mime/structure.h"

namespace porcupine::mime {

// A quoted string ("a \"b\"") or, when `s` holds CR, LF, NUL or 8-bit bytes
// or more than four characters to escape, a literal ({n}\r\n then the bytes).
void AppendImapString(std::string_view s, std::string* out);
// A string meant for people (Subject, display names), as Dovecot writes it:
// blanks and line breaks collapsed to single spaces and trimmed, NUL as
// 0x80; quoted when unchanged and free of '"', '\\' and 8-bit bytes, else a
// literal of the cleaned text.
void AppendImapHumanString(std::string_view s, std::string* out);
// NIL for nullopt, else AppendImapString.
void AppendImapNString(const std::optional<std::string>& s, std::string* out);
// Like AppendImapNString, with line breaks removed first (see Unfold).
void AppendImapNStringNoLf(const std::optional<std::string>& s, std::string* out);

// The parenthesised envelope of a message header, without "ENVELOPE ".
void AppendEnvelope(const std::vector<HeaderField>& fields, std::string* out);

// The parenthesised BODY (extended = false) or BODYSTRUCTURE of `part`.
void AppendBodyStructure(const Part& part, bool extended, std::string* out);

}  // namespace porcupine::mime
