// Internal to mime/: content decoding for SEARCH, on GMime 3: RFC 2047
// encoded-words, Content-Transfer-Encoding and charsets, all to UTF-8, and
// RFC 5322 dates. Thread-safe once mime::Init has run (callers ensure it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace porcupine::mime {

// An unstructured header value (folded or not) with encoded-words decoded;
// raw 8-bit text is taken as UTF-8 when valid, else guessed by GMime.
std::string DecodeHeaderText(std::string_view raw_value);
// A display name (phrase): like DecodeHeaderText, with phrase quoting rules.
std::string DecodePhrase(std::string_view phrase);

// Undoes base64 / quoted-printable / x-uuencode (any case); other encodings
// are returned as they are.
std::string DecodeTransferEncoding(std::string_view body, std::string_view encoding);

// Converts text in `charset` (empty: unknown) to valid UTF-8, never failing:
// unknown charsets and invalid sequences fall back to GMime's 8-bit guess.
std::string ToUtf8(std::string_view text, std::string_view charset);

struct ParsedDate {
  int64_t utc_ms = 0;          // ms since the epoch
  int32_t offset_minutes = 0;  // the zone written in the header (+0200 → 120)
};
std::optional<ParsedDate> ParseDate(std::string_view raw_value);

}  // namespace porcupine::mime
