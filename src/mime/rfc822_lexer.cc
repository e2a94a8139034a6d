#include "mime/rfc822_lexer.h"

#include <cstring>

namespace porcupine::mime {

bool IsAtext(unsigned char c) {
  if (c >= 0x80) return true;  // raw UTF-8 in headers is common; keep it in words
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  return c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

bool IsMimeToken(unsigned char c) {
  // RFC 2045 tspecials are a superset of RFC 5322 specials plus "/?=";
  // Dovecot also lets '.' through, which common charsets ("iso-8859-1") need
  // anyway because '.' is not a tspecial.
  if (c == '.') return true;
  return IsAtext(c) && c != '/' && c != '?' && c != '=';
}

bool Rfc822Lexer::SkipCfws() {
  while (!AtEnd()) {
    char c = in_[pos_];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++pos_;
      continue;
    }
    if (c != '(') break;
    if (!SkipComment()) return false;
  }
  return true;
}

// Like Dovecot, the comment text is collected in pieces (flushed at quoted
// pairs and line breaks), so an unterminated comment leaves what was flushed.
bool Rfc822Lexer::SkipComment() {
  last_comment_.clear();
  std::string pending;
  int level = 1;
  ++pos_;  // '('
  while (!AtEnd()) {
    char d = in_[pos_++];
    if (d == '\\') {
      last_comment_ += pending;
      pending.clear();
      if (AtEnd()) return false;
      pending.push_back(in_[pos_++]);
    } else if (d == '\n') {
      if (!pending.empty() && pending.back() == '\r') pending.pop_back();
      last_comment_ += pending;
      pending.clear();
    } else if (d == '(') {
      ++level;
      pending.push_back(d);
    } else if (d == ')' && --level == 0) {
      last_comment_ += pending;
      return true;
    } else {
      pending.push_back(d);
    }
  }
  return false;  // unterminated
}

bool Rfc822Lexer::ParseAtom(std::string* out) {
  if (AtEnd() || !IsAtext(Peek())) return false;
  size_t start = pos_;
  while (!AtEnd() && IsAtext(Peek())) ++pos_;
  out->append(in_.substr(start, pos_ - start));
  return SkipCfws();
}

bool Rfc822Lexer::ParseAtomOrDot(std::string* out) {
  if (AtEnd() || !(IsAtext(Peek()) || Peek() == '.')) return false;
  size_t start = pos_;
  while (!AtEnd() && (IsAtext(Peek()) || Peek() == '.')) ++pos_;
  out->append(in_.substr(start, pos_ - start));
  return SkipCfws();
}

bool Rfc822Lexer::ParseDotAtom(std::string* out, bool lenient_dots) {
  if (AtEnd() || !IsAtext(Peek())) return false;
  for (;;) {
    size_t start = pos_;
    while (!AtEnd() && IsAtext(Peek())) ++pos_;
    out->append(in_.substr(start, pos_ - start));
    // RFC 822 allowed CFWS around the dots; Dovecot accepts it too.
    if (!SkipCfws()) return false;
    if (!PeekIs('.')) return true;
    ++pos_;
    out->push_back('.');
    if (!SkipCfws()) return false;
    if (AtEnd()) return lenient_dots;
    if (!IsAtext(Peek()) && !(lenient_dots && PeekIs('.'))) return lenient_dots;
  }
}

// As Dovecot does, text is flushed to *out at quoted pairs, line breaks and
// the closing quote, so an unterminated string adds only what was flushed.
bool Rfc822Lexer::ParseQuotedString(std::string* out) {
  ++pos_;  // the opening quote
  std::string pending;
  while (!AtEnd()) {
    char c = in_[pos_++];
    if (c == '"') {
      out->append(pending);
      return SkipCfws();
    }
    if (c == '\\') {
      out->append(pending);
      pending.clear();
      if (AtEnd()) return false;
      pending.push_back(in_[pos_++]);
    } else if (c == '\n') {  // folding inside quotes is removed
      if (!pending.empty() && pending.back() == '\r') pending.pop_back();
      out->append(pending);
      pending.clear();
    } else {
      pending.push_back(c);
    }
  }
  return false;  // missing closing quote
}

bool Rfc822Lexer::ParseDomainLiteral(std::string* out) {
  size_t start = pos_++;
  while (!AtEnd()) {
    char c = in_[pos_++];
    if (c == '\\') {
      if (AtEnd()) return false;
      ++pos_;
    } else if (c == ']') {
      out->append(in_.substr(start, pos_ - start));
      return SkipCfws();
    }
  }
  return false;
}

bool Rfc822Lexer::ParseDomain(std::string* out) {
  ++pos_;  // '@'
  if (!SkipCfws() || AtEnd()) return false;
  if (PeekIs('[')) return ParseDomainLiteral(out);
  return ParseDotAtom(out);
}

bool Rfc822Lexer::ParsePhrase(std::string* out) {
  if (AtEnd() || PeekIs('.')) return false;
  for (;;) {
    bool ok = PeekIs('"') ? ParseQuotedString(out) : ParseAtomOrDot(out);
    if (!ok) return false;
    if (AtEnd()) return true;
    unsigned char c = Peek();
    if (!IsAtext(c) && c != '"' && c != '.') return true;
    out->push_back(' ');
  }
}

bool Rfc822Lexer::ParseMimeToken(std::string* out) {
  if (AtEnd() || !IsMimeToken(Peek())) return false;
  size_t start = pos_;
  while (!AtEnd() && IsMimeToken(Peek())) ++pos_;
  out->append(in_.substr(start, pos_ - start));
  return SkipCfws();
}

}  // namespace porcupine::mime
