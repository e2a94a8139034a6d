// A stored RFC 5322 message parsed for IMAP: the ENVELOPE and BODYSTRUCTURE
// responses, body sections for FETCH BODY[...], and the decoded header and
// text content SEARCH matches against. Pure: bytes in, strings out.
//
// The MIME structure and the ENVELOPE/BODYSTRUCTURE forms follow Dovecot
// 2.3's rules exactly (checked byte for byte against Dovecot 2.3.19 on the
// imaptest corpus and on fuzzed messages), because IMAP clients and the
// imaptest scripts expect Dovecot's answers; GMime 3 does the decoding
// (RFC 2047, transfer encodings, charsets, dates).
//
// Thread-safe: a ParsedMessage is immutable after Parse; GMime is initialised
// once per process (mime::Init, idempotent, called by Parse).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::mime {

void Init();

// A FETCH section spec (RFC 3501 §6.4.5), already parsed by the IMAP layer.
struct Section {
  std::vector<uint32_t> part;  // "1.2.3" → {1,2,3}; empty = the whole message
  enum class Kind {
    kAll,              // BODY[] or BODY[1.2]: the part's content (whole message for [])
    kHeader,           // HEADER: header incl. the blank line
    kHeaderFields,     // HEADER.FIELDS (a b): matching fields as stored, then CRLF
    kHeaderFieldsNot,  // HEADER.FIELDS.NOT (a b): the others, then the blank line if any
    kText,             // TEXT: body without header
    kMime,             // n.MIME: the part's MIME header
  };
  Kind kind = Kind::kAll;
  std::vector<std::string> fields;  // for kHeaderFields / kHeaderFieldsNot, any case
};

// Bounds on the work a hostile message can cause. A multipart or message
// beyond them is not parsed: it is one part, reported as
// application/octet-stream (as Dovecot does).
struct ParseLimits {
  int max_depth = 100;       // nesting levels counting the message (99 parsed: Dovecot's)
  size_t max_parts = 10000;  // MIME parts in one message (Dovecot's default)
};

// One mailbox of an address header (for SORT, RFC 5256, and DISPLAYFROM /
// DISPLAYTO, RFC 5957).
struct Mailbox {
  std::string display_name;  // RFC 2047-decoded UTF-8; empty when none
  std::string local_part;    // as written (quotes removed); may be empty
  std::string domain;        // may be empty
};

class ParsedMessage {
 public:
  // Never fails: unparsable input is treated as a text/plain message with
  // whatever header lines can be read (servers must still answer FETCH).
  // The structure follows Dovecot's MIME parsing rules (boundary prefixes,
  // digest defaults), so sections and sizes match what Dovecot answers.
  static std::unique_ptr<ParsedMessage> Parse(std::string raw, const ParseLimits& limits = {});
  ~ParsedMessage();
  ParsedMessage(const ParsedMessage&) = delete;
  ParsedMessage& operator=(const ParsedMessage&) = delete;

  const std::string& raw() const;

  // IMAP response fragments, ready to be put after "ENVELOPE " etc.
  // Strings are quoted or sent as literals as needed (8-bit, CR/LF, more
  // than four quotes/backslashes). As in Dovecot: the last of repeated
  // Date/Subject/Message-ID/In-Reply-To fields counts, repeated address
  // fields are joined, Sender and Reply-To default to From, and the Subject
  // and display names are cleaned "for humans" (blanks and folding collapsed,
  // sent as a literal when changed or holding '"' or '\\').
  std::string Envelope() const;
  std::string BodyStructure(bool extended) const;  // extended: BODYSTRUCTURE, else BODY

  // The exact octets of a section; nullopt when the part does not exist
  // (IMAP answers an empty string then). Part numbers resolve as in Dovecot:
  // a multipart's n-th part; for any other part only 1, meaning the part
  // itself, followed by more numbers only after a message/rfc822 part. HEADER
  // and TEXT with a part number need a message/rfc822 part.
  std::optional<std::string> SectionBytes(const Section& section) const;

  // SEARCH support: values of every header field `name` (any case), decoded
  // (RFC 2047) to UTF-8; the whole header block decoded; every text part's
  // content decoded (transfer encoding and charset) to UTF-8.
  std::vector<std::string> HeaderValues(std::string_view name) const;
  std::string DecodedHeaders() const;
  std::string DecodedBodyText() const;
  // For SEARCH FROM/TO/CC/BCC (Dovecot matches these against the parsed
  // addresses, not the raw text): one string per field `name`, its addresses
  // rewritten as "Name <local@domain>, group: a@b;" with names decoded.
  std::vector<std::string> AddressHeaderValues(std::string_view name) const;
  // The mailboxes of the first field `name` (group markers left out).
  std::vector<Mailbox> Mailboxes(std::string_view name) const;
  // The Date: header as ms since the epoch (UTC); nullopt when absent/bad.
  std::optional<int64_t> SentDateMs() const;
  // The Date: header's wall-clock time read as if it were UTC (SentDateMs
  // plus the header's zone offset): SENTBEFORE / SENTON / SENTSINCE compare
  // the day of this value (RFC 3501 §6.4.4 disregards time and timezone).
  std::optional<int64_t> SentDateLocalMs() const;

 private:
  struct Impl;
  explicit ParsedMessage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Case-insensitive UTF-8 substring match as SEARCH needs it (i;unicode-casemap
// approximated by simple case folding of ASCII and Latin/Greek/Cyrillic).
bool ContainsFolded(std::string_view haystack, std::string_view needle);

}  // namespace porcupine::mime
