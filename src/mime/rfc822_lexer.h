// Internal to mime/: lexical scanning of RFC 5322 / RFC 2045 structured header
// values (addresses, Content-Type and friends), tolerant in the way Dovecot's
// lib-mail rfc822-parser is, so that the ENVELOPE and BODYSTRUCTURE we build
// from broken headers match what IMAP clients get from Dovecot.
//
// Every Parse* method appends what it read to *out, then skips the CFWS that
// follows, and returns false when the input at the cursor is not of that kind
// (the cursor may then have moved; callers that backtrack use pos()/Reset()).
// Not thread-safe; one lexer per header value. The lexer does not own `input`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace porcupine::mime {

bool IsAtext(unsigned char c);      // RFC 5322 atext, plus 8-bit bytes (raw UTF-8)
bool IsMimeToken(unsigned char c);  // RFC 2045 token char (and '.', 8-bit)

class Rfc822Lexer {
 public:
  explicit Rfc822Lexer(std::string_view input) : in_(input) {}

  bool AtEnd() const { return pos_ >= in_.size(); }
  bool PeekIs(char c) const { return !AtEnd() && in_[pos_] == c; }
  // REQUIRES: !AtEnd().
  unsigned char Peek() const { return static_cast<unsigned char>(in_[pos_]); }
  void Advance() { ++pos_; }
  size_t pos() const { return pos_; }
  void Reset(size_t pos) { pos_ = pos; }
  std::string_view Rest() const { return in_.substr(pos_ < in_.size() ? pos_ : in_.size()); }

  // Skips spaces, tabs, CR, LF and (nested) comments. Returns false on an
  // unterminated comment (the cursor is then at the end).
  bool SkipCfws();
  // The content of the last comment skipped (unfolded, quoted-pairs resolved).
  const std::string& last_comment() const { return last_comment_; }
  void ClearLastComment() { last_comment_.clear(); }

  bool ParseAtom(std::string* out);       // 1*atext
  bool ParseAtomOrDot(std::string* out);  // 1*(atext / ".")
  // atext *("." atext), CFWS allowed around dots; `lenient_dots` also takes
  // "a..b" and "a." (Dovecot does for local parts, not for domains).
  bool ParseDotAtom(std::string* out, bool lenient_dots = false);
  bool ParseQuotedString(std::string* out);  // REQUIRES: PeekIs('"'); content without quotes
  bool ParseDomain(std::string* out);        // REQUIRES: PeekIs('@'); dot-atom or [literal]
  bool ParsePhrase(std::string* out);        // 1*word, words joined by one space
  bool ParseMimeToken(std::string* out);     // 1*token char

 private:
  bool ParseDomainLiteral(std::string* out);
  bool SkipComment();  // REQUIRES: PeekIs('(')

  std::string_view in_;
  size_t pos_ = 0;
  std::string last_comment_;
};

}  // namespace porcupine::mime
