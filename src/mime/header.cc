#include "mime/header.h"

#include <strings.h>

#include <algorithm>

#include "mime/rfc822_lexer.h"

namespace porcupine::mime {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimEol(std::string_view s) {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

HeaderField MakeField(std::string_view raw) {
  HeaderField f;
  f.raw = raw;
  std::string_view text = TrimEol(raw);
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    f.name = text;
    while (!f.name.empty() && IsBlank(f.name.back())) f.name.remove_suffix(1);
    return f;
  }
  f.name = text.substr(0, colon);
  while (!f.name.empty() && IsBlank(f.name.back())) f.name.remove_suffix(1);
  std::string_view value = text.substr(colon + 1);
  while (!value.empty() && IsBlank(value.front())) value.remove_prefix(1);
  f.value = value;
  return f;
}

// RFC 2231 section of "name*N*": parsed name, index and whether encoded.
struct Section2231 {
  std::string name;
  unsigned index = 0;
  bool extended = false;
  std::string value;
};

bool Split2231(const std::string& key, std::string value, Section2231* out) {
  size_t star = key.find('*');
  if (star == std::string::npos || star == 0) return false;
  size_t p = star + 1;
  unsigned index = 0;
  size_t digits = 0;
  while (p < key.size() && key[p] >= '0' && key[p] <= '9' && digits < 6) {
    index = index * 10 + static_cast<unsigned>(key[p] - '0');
    ++p;
    ++digits;
  }
  // "name*" alone is an encoded value without continuations.
  bool extended = digits == 0 || (p < key.size() && key[p] == '*');
  if (digits > 0 && extended) ++p;
  if (p != key.size()) return false;
  *out = Section2231{key.substr(0, star), index, extended, std::move(value)};
  return true;
}

// Merges name*0, name*1, ... into one parameter (Dovecot's rfc2231_parse):
// "name" when no section was encoded, else "name*" with the raw encoded
// value. Sets with a missing index are passed on section by section.
void Merge2231(std::vector<Section2231> sections, std::vector<MimeParam>* out) {
  std::stable_sort(sections.begin(), sections.end(), [](const auto& a, const auto& b) {
    int c = strcasecmp(a.name.c_str(), b.name.c_str());
    return c != 0 ? c < 0 : a.index < b.index;
  });
  for (size_t i = 0, next = 0; i < sections.size(); i = next) {
    bool complete = true, extended = false;
    unsigned want = 0;
    for (next = i;
         next < sections.size() && EqualsIgnoreCase(sections[i].name, sections[next].name);
         ++next, ++want) {
      if (sections[next].index != want) complete = false;
      if (sections[next].extended) extended = true;
    }
    if (!complete) {
      for (size_t j = i; j < next; ++j) {
        const Section2231& s = sections[j];
        std::string key = s.name + "*" + std::to_string(s.index) + (s.extended ? "*" : "");
        out->push_back({std::move(key), s.value});
      }
      continue;
    }
    std::string value;
    if (extended && !sections[i].extended) value = "''";
    for (size_t j = i; j < next; ++j) {
      if (extended && !sections[j].extended) {
        for (char c : sections[j].value) value += c == '%' ? std::string("%25") : std::string(1, c);
      } else {
        value += sections[j].value;
      }
    }
    out->push_back({sections[i].name + (extended ? "*" : ""), std::move(value)});
  }
}

// One "; name=value" (an empty name is accepted, as Dovecot does). False:
// malformed; the cursor is where it went wrong.
bool ParseOneParam(Rfc822Lexer* lex, std::string* key, std::string* value) {
  if (!lex->PeekIs(';')) return false;
  lex->Advance();
  if (!lex->SkipCfws() || lex->AtEnd()) return false;
  size_t before = lex->pos();
  if (!lex->ParseMimeToken(key) && lex->pos() != before) return false;  // comment error
  if (!lex->PeekIs('=')) return false;
  lex->Advance();
  if (!lex->SkipCfws()) return false;
  if (lex->AtEnd()) return true;
  if (lex->PeekIs('"')) return lex->ParseQuotedString(value);
  if (lex->PeekIs('=')) {  // unquoted RFC 2047 word: name==?utf-8?b?...?=
    std::string_view rest = lex->Rest();
    size_t n = rest.find_first_of("; \t\r\n");
    if (n == std::string_view::npos) n = rest.size();
    value->append(rest.substr(0, n));
    lex->Reset(lex->pos() + n);
    return lex->SkipCfws();
  }
  before = lex->pos();
  return lex->ParseMimeToken(value) || lex->pos() == before;  // an empty value is accepted
}

std::vector<MimeParam> ParseParams(Rfc822Lexer* lex) {
  std::vector<MimeParam> plain;
  std::vector<Section2231> sections;
  while (!lex->AtEnd()) {
    std::string key, value;
    if (!ParseOneParam(lex, &key, &value)) {
      // Dovecot skips one byte from where parsing failed and goes on, so a
      // stray ";;" or "; a;" loses the parameters after it.
      if (lex->AtEnd()) break;
      lex->Advance();
      continue;
    }
    Section2231 section;
    if (Split2231(key, value, &section)) {
      sections.push_back(std::move(section));
    } else {
      plain.push_back({std::move(key), std::move(value)});
    }
  }
  Merge2231(std::move(sections), &plain);
  return plain;
}

// Only "type" alone or "type/subtype" followed by parameters counts; any
// other form is reported as "" "" (what Dovecot answers).
void ParseContentType(std::string_view value, ContentInfo* info) {
  info->present = true;
  Rfc822Lexer lex(value);
  std::string type, subtype;
  lex.SkipCfws();
  lex.ParseMimeToken(&type);  // a broken comment after it ends the value
  if (type.empty()) return;
  if (lex.AtEnd()) {  // "text" alone
    info->type = type;
    return;
  }
  if (!lex.PeekIs('/')) return;
  lex.Advance();
  lex.SkipCfws();
  if (!lex.ParseMimeToken(&subtype)) return;  // also a broken comment after it
  if (!lex.AtEnd() && !lex.PeekIs(';')) return;
  info->type = type;
  info->subtype = subtype;
  info->params = ParseParams(&lex);
}

void ParseDisposition(std::string_view value, ContentInfo* info) {
  Rfc822Lexer lex(value);
  std::string token;  // may stay empty: Dovecot then reports ""
  if (!lex.SkipCfws()) return;
  size_t before = lex.pos();
  if (!lex.ParseMimeToken(&token) && lex.pos() != before) return;
  info->disposition = token;
  info->disposition_params = ParseParams(&lex);
}

std::optional<std::string> ParseEncoding(std::string_view value) {
  Rfc822Lexer lex(value);
  std::string token;
  if (!lex.SkipCfws() || !lex.ParseMimeToken(&token) || !lex.AtEnd()) return std::nullopt;
  return token;
}

std::vector<std::string> ParseLanguages(std::string_view value) {
  Rfc822Lexer lex(value);
  std::vector<std::string> langs;
  lex.SkipCfws();
  for (std::string lang; lex.ParseAtom(&lang); lang.clear()) {
    langs.push_back(lang);
    if (!lex.PeekIs(',')) break;
    lex.Advance();
    lex.SkipCfws();
  }
  return langs;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::vector<HeaderField> SplitHeaderFields(std::string_view block) {
  std::vector<HeaderField> fields;
  size_t pos = 0, field_start = std::string_view::npos;
  while (pos < block.size()) {
    size_t eol = block.find('\n', pos);
    size_t next = eol == std::string_view::npos ? block.size() : eol + 1;
    std::string_view line = block.substr(pos, next - pos);
    if (TrimEol(line).empty()) break;  // the empty line ending the header
    if (!IsBlank(line[0]) || field_start == std::string_view::npos) {
      if (field_start != std::string_view::npos) {
        fields.push_back(MakeField(block.substr(field_start, pos - field_start)));
      }
      field_start = pos;
    }
    pos = next;
  }
  if (field_start != std::string_view::npos) {
    fields.push_back(MakeField(block.substr(field_start, pos - field_start)));
  }
  return fields;
}

std::string Unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c != '\r' && c != '\n') {
      out.push_back(c);
      continue;
    }
    char next = i + 1 < value.size() ? value[i + 1] : '\0';
    if (next != ' ' && next != '\t' && next != '\r' && next != '\n' && next != '\0') {
      out.push_back(' ');
    }
  }
  return out;
}

const std::string* ContentInfo::Param(std::string_view name) const {
  for (const MimeParam& p : params) {
    if (EqualsIgnoreCase(p.name, name)) return &p.value;
  }
  return nullptr;
}

std::vector<MimeParam> ParseMimeParams(std::string_view text) {
  Rfc822Lexer lex(text);
  return ParseParams(&lex);
}

ContentInfo ParseContentInfo(const std::vector<HeaderField>& fields) {
  ContentInfo info;
  bool seen_type = false, seen_disposition = false, seen_language = false;
  for (const HeaderField& f : fields) {
    if (f.name.size() < 8 || !EqualsIgnoreCase(f.name.substr(0, 8), "content-")) continue;
    std::string_view n = f.name.substr(8);
    auto first = [&](std::optional<std::string>* slot) {
      if (!*slot) *slot = std::string(f.value);
    };
    if (EqualsIgnoreCase(n, "type")) {
      if (!seen_type) ParseContentType(f.value, &info);
      seen_type = true;
    } else if (EqualsIgnoreCase(n, "transfer-encoding")) {
      if (!info.encoding) info.encoding = ParseEncoding(f.value);
    } else if (EqualsIgnoreCase(n, "id")) {
      first(&info.id);
    } else if (EqualsIgnoreCase(n, "description")) {
      first(&info.description);
    } else if (EqualsIgnoreCase(n, "md5")) {
      first(&info.md5);
    } else if (EqualsIgnoreCase(n, "location")) {
      first(&info.location);
    } else if (EqualsIgnoreCase(n, "disposition")) {
      if (!seen_disposition) ParseDisposition(f.value, &info);
      seen_disposition = true;
    } else if (EqualsIgnoreCase(n, "language")) {
      if (!seen_language) info.languages = ParseLanguages(f.value);
      seen_language = true;
    }
  }
  return info;
}

}  // namespace porcupine::mime
