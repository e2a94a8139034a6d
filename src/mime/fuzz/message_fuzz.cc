// libFuzzer target for the MIME layer behind IMAP FETCH and SEARCH
// (mime::ParsedMessage, and through it the structure scanner, the header and
// Content-* parsers, the address parser, RFC 2047/2231 and transfer-encoding
// decoding, dates, and the ENVELOPE/BODYSTRUCTURE writers).
//
// Input: byte 0 picks the parse limits (bits 0-2: max_depth 1..7, 0 = the
// default; bits 3-5: max_parts 2..14, 0 = the default); the rest is a stored
// message. Every accessor runs, and:
//  - BODY[] is the message and BODY[HEADER] followed by BODY[TEXT] is too;
//  - ENVELOPE, BODY and BODYSTRUCTURE are one well-formed IMAP parenthesised
//    list (quoted strings without CR, LF, NUL or 8-bit bytes, literals of
//    the announced length, atoms that are NIL or numbers), since a client
//    reads the rest of the session through them.
//
// Built by CMake as mime_message_fuzz (`make fuzz`, clang) and replayed over
// its corpus by the test fuzz_replay.mime_message_fuzz in every build
// (docs/fuzzing.md):
//   build-fuzz/mime_message_fuzz -max_len=8192 src/mime/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mime/message.h"

namespace {

using porcupine::mime::ParsedMessage;
using porcupine::mime::Section;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// One IMAP parenthesised list from s[*pos] ('('), nested lists included;
// false when it is not well-formed.
bool ReadList(std::string_view s, size_t* pos) {
  if (*pos >= s.size() || s[*pos] != '(') return false;
  ++*pos;
  bool first = true;
  while (*pos < s.size() && s[*pos] != ')') {
    // body-type-mpart (RFC 3501 §9) puts the parts' lists side by side.
    const bool list_after_list = s[*pos] == '(' && s[*pos - 1] == ')';
    if (!first && !list_after_list && s[(*pos)++] != ' ') return false;
    first = false;
    if (*pos >= s.size()) return false;
    const char c = s[*pos];
    if (c == '(') {
      if (!ReadList(s, pos)) return false;
    } else if (c == '"') {
      for (++*pos;; ++*pos) {
        if (*pos >= s.size()) return false;
        const unsigned char q = static_cast<unsigned char>(s[*pos]);
        if (q == '"') break;
        if (q == '\r' || q == '\n' || q == 0 || q >= 0x80) return false;
        if (q == '\\') {
          if (++*pos >= s.size() || (s[*pos] != '"' && s[*pos] != '\\')) return false;
        }
      }
      ++*pos;
    } else if (c == '{') {
      size_t n = 0, digits = 0;
      for (++*pos; *pos < s.size() && IsDigit(s[*pos]) && digits < 10; ++*pos, ++digits) {
        n = n * 10 + static_cast<size_t>(s[*pos] - '0');
      }
      if (digits == 0 || s.substr(*pos, 3) != "}\r\n") return false;
      *pos += 3;
      if (s.size() - *pos < n) return false;
      *pos += n;
    } else {
      const size_t begin = *pos;
      while (*pos < s.size() && s[*pos] != ' ' && s[*pos] != ')') ++*pos;
      std::string_view atom = s.substr(begin, *pos - begin);
      if (atom != "NIL") {
        if (atom.empty()) return false;
        for (char d : atom) {
          if (!IsDigit(d)) return false;
        }
      }
    }
  }
  if (*pos >= s.size()) return false;
  ++*pos;
  return true;
}

void CheckList(std::string_view s) {
  size_t pos = 0;
  if (!ReadList(s, &pos) || pos != s.size()) std::abort();
}

Section Sec(std::vector<uint32_t> part, Section::Kind kind) {
  Section s;
  s.part = std::move(part);
  s.kind = kind;
  if (kind == Section::Kind::kHeaderFields || kind == Section::Kind::kHeaderFieldsNot) {
    s.fields = {"Subject", "content-type", "FROM"};
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  porcupine::mime::ParseLimits limits;
  if (data[0] & 0x07) limits.max_depth = data[0] & 0x07;
  if ((data[0] >> 3) & 0x07) limits.max_parts = 2u * ((data[0] >> 3) & 0x07);
  const std::string raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::unique_ptr<ParsedMessage> m = ParsedMessage::Parse(raw, limits);
  if (m->raw() != raw) std::abort();

  CheckList(m->Envelope());
  CheckList(m->BodyStructure(false));
  CheckList(m->BodyStructure(true));

  using K = Section::Kind;
  if (m->SectionBytes(Sec({}, K::kAll)) != raw) std::abort();
  const auto header = m->SectionBytes(Sec({}, K::kHeader));
  const auto text = m->SectionBytes(Sec({}, K::kText));
  if (!header || !text || *header + *text != raw) std::abort();
  const std::vector<std::vector<uint32_t>> parts = {{1},    {2}, {1, 1},    {1, 2},
                                                    {2, 1}, {3}, {1, 1, 1}, {0}};
  for (const auto& part : parts) {
    for (K kind :
         {K::kAll, K::kHeader, K::kHeaderFields, K::kHeaderFieldsNot, K::kText, K::kMime}) {
      if (auto bytes = m->SectionBytes(Sec(part, kind)); bytes && bytes->size() > raw.size() + 2) {
        std::abort();  // a section is a piece of the message (HEADER.FIELDS adds a CRLF)
      }
    }
  }

  for (const char* name : {"subject", "From", "to", "cc", "bcc", "reply-to", "sender", "date"}) {
    (void)m->HeaderValues(name);
    (void)m->AddressHeaderValues(name);
    (void)m->Mailboxes(name);
  }
  const std::string headers = m->DecodedHeaders();
  const std::string body = m->DecodedBodyText();
  (void)m->SentDateMs();
  (void)m->SentDateLocalMs();
  // SEARCH's matcher over what it is given: the decoded text and a needle
  // taken from the message itself.
  (void)porcupine::mime::ContainsFolded(body, raw.substr(raw.size() / 2, 8));
  (void)porcupine::mime::ContainsFolded(headers, raw.substr(0, 4));
  return 0;
}
