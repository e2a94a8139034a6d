#include "protocol/imap/fetch.h"

#include <algorithm>

#include "protocol/imap/encode.h"

namespace porcupine::imap {
namespace {

using Kind = FetchItem::Kind;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Splits a parenthesized header field list "(From "X-Y" To)" into names.
std::optional<std::vector<std::string>> ParseFieldList(std::string_view s) {
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    std::string name;
    if (s[i] == '"') {
      size_t end = s.find('"', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      name = std::string(s.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      size_t end = std::min(s.find(' ', i), s.size());
      name = std::string(s.substr(i, end - i));
      i = end;
    }
    // RFC 5322 field names: printable ASCII except ':'.
    bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return c > 0x20 && c < 0x7f && c != ':' && c != '(' && c != ')' && c != '"';
    });
    if (!ok) return std::nullopt;
    fields.push_back(std::move(name));
  }
  if (fields.empty()) return std::nullopt;
  return fields;
}

std::optional<mime::Section> ParseSectionText(std::string_view text, mime::Section s,
                                              std::string* label) {
  std::string_view upper_kind = text.substr(0, text.find(' '));
  std::string kind = ToUpper(upper_kind);
  std::string_view rest = text.substr(upper_kind.size());
  if (kind == "HEADER" || kind == "TEXT" || kind == "MIME") {
    if (!rest.empty()) return std::nullopt;
    if (kind == "MIME" && s.part.empty()) return std::nullopt;
    s.kind = kind == "HEADER" ? mime::Section::Kind::kHeader
             : kind == "TEXT" ? mime::Section::Kind::kText
                              : mime::Section::Kind::kMime;
    *label += kind;
    return s;
  }
  if (kind != "HEADER.FIELDS" && kind != "HEADER.FIELDS.NOT") return std::nullopt;
  if (rest.size() < 2 || rest[0] != ' ') return std::nullopt;
  std::optional<std::vector<std::string>> fields = ParseFieldList(rest.substr(1));
  if (!fields) return std::nullopt;
  s.kind = kind == "HEADER.FIELDS" ? mime::Section::Kind::kHeaderFields
                                   : mime::Section::Kind::kHeaderFieldsNot;
  *label += kind + " (";
  for (size_t i = 0; i < fields->size(); ++i) {
    *label += (i ? " " : "") + ToUpper((*fields)[i]);
  }
  *label += ")";
  s.fields = std::move(*fields);
  return s;
}

// "<origin.count>" → origin, count; count must be non-zero.
bool ParsePartial(std::string_view s, FetchItem* item) {
  if (s.empty()) return true;
  if (s.size() < 5 || s.front() != '<' || s.back() != '>') return false;
  s = s.substr(1, s.size() - 2);
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  std::optional<uint64_t> origin = ParseNumber64(s.substr(0, dot));
  std::optional<uint64_t> count = ParseNumber64(s.substr(dot + 1));
  if (!origin || !count || *count == 0) return false;
  item->origin = origin;
  item->count = *count;
  return true;
}

// BODY[...]<...> and BODY.PEEK[...]<...>.
std::optional<FetchItem> ParseBodySection(std::string_view atom) {
  size_t open = atom.find('[');
  size_t close = atom.rfind(']');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  std::string name = ToUpper(atom.substr(0, open));
  if (name != "BODY" && name != "BODY.PEEK") return std::nullopt;
  FetchItem item;
  item.kind = Kind::kSection;
  item.peek = name == "BODY.PEEK";
  std::string label;
  std::optional<mime::Section> section =
      ParseSection(atom.substr(open + 1, close - open - 1), &label);
  if (!section || !ParsePartial(atom.substr(close + 1), &item)) return std::nullopt;
  item.section = std::move(*section);
  item.label = "BODY[" + label + "]";
  if (item.origin) item.label += "<" + std::to_string(*item.origin) + ">";
  return item;
}

FetchItem Simple(Kind kind) {
  FetchItem item;
  item.kind = kind;
  return item;
}

FetchItem Rfc822(mime::Section::Kind kind, bool peek, std::string label) {
  FetchItem item;
  item.kind = Kind::kSection;
  item.section.kind = kind;
  item.peek = peek;
  item.label = std::move(label);
  return item;
}

std::optional<FetchItem> ParseItem(const Token& t) {
  if (t.kind != Token::Kind::kAtom) return std::nullopt;
  if (t.text.find('[') != std::string::npos) return ParseBodySection(t.text);
  std::string n = ToUpper(t.text);
  if (n == "FLAGS") return Simple(Kind::kFlags);
  if (n == "INTERNALDATE") return Simple(Kind::kInternalDate);
  if (n == "RFC822.SIZE") return Simple(Kind::kSize);
  if (n == "ENVELOPE") return Simple(Kind::kEnvelope);
  if (n == "BODY") return Simple(Kind::kBody);
  if (n == "BODYSTRUCTURE") return Simple(Kind::kBodyStructure);
  if (n == "UID") return Simple(Kind::kUid);
  if (n == "RFC822") return Rfc822(mime::Section::Kind::kAll, false, "RFC822");
  if (n == "RFC822.HEADER") return Rfc822(mime::Section::Kind::kHeader, true, "RFC822.HEADER");
  if (n == "RFC822.TEXT") return Rfc822(mime::Section::Kind::kText, false, "RFC822.TEXT");
  return std::nullopt;
}

bool SameItem(const FetchItem& a, const FetchItem& b) {
  return a.kind == b.kind && a.label == b.label && a.peek == b.peek;
}

void Add(FetchSpec* spec, FetchItem item) {
  for (const FetchItem& i : spec->items) {
    if (SameItem(i, item)) return;
  }
  Kind k = item.kind;
  spec->needs_body |=
      k == Kind::kEnvelope || k == Kind::kBody || k == Kind::kBodyStructure || k == Kind::kSection;
  spec->sets_seen |= k == Kind::kSection && !item.peek;
  spec->has_uid |= k == Kind::kUid;
  spec->has_flags |= k == Kind::kFlags;
  spec->items.push_back(std::move(item));
}

// ALL, FAST and FULL (RFC 3501 §6.4.5); only valid alone, not in a list.
bool AddMacro(std::string_view name, FetchSpec* spec) {
  std::string n = ToUpper(name);
  if (n != "ALL" && n != "FAST" && n != "FULL") return false;
  Add(spec, Simple(Kind::kFlags));
  Add(spec, Simple(Kind::kInternalDate));
  Add(spec, Simple(Kind::kSize));
  if (n != "FAST") Add(spec, Simple(Kind::kEnvelope));
  if (n == "FULL") Add(spec, Simple(Kind::kBody));
  return true;
}

}  // namespace

std::optional<mime::Section> ParseSection(std::string_view text, std::string* label) {
  mime::Section s;
  label->clear();
  size_t pos = 0;
  while (pos < text.size() && IsDigit(text[pos])) {
    size_t end = pos;
    while (end < text.size() && IsDigit(text[end])) ++end;
    std::optional<uint32_t> n = ParseNumber32(text.substr(pos, end - pos));
    if (!n || *n == 0) return std::nullopt;
    s.part.push_back(*n);
    *label += std::string(text.substr(pos, end - pos));
    pos = end;
    if (pos == text.size()) return s;  // "1.2": the part's content
    if (text[pos] != '.') return std::nullopt;
    *label += '.';
    ++pos;
  }
  if (pos == text.size()) {
    if (!s.part.empty()) return std::nullopt;  // a trailing dot: "1."
    return s;                                  // "": the whole message
  }
  return ParseSectionText(text.substr(pos), std::move(s), label);
}

std::optional<FetchSpec> ParseFetchSpec(const Token& att, std::string* error) {
  FetchSpec spec;
  if (att.kind == Token::Kind::kAtom && AddMacro(att.text, &spec)) return spec;
  std::vector<const Token*> items;
  if (att.kind == Token::Kind::kList) {
    for (const Token& t : att.items) items.push_back(&t);
  } else {
    items.push_back(&att);
  }
  if (items.empty()) {
    *error = "Empty fetch attribute list";
    return std::nullopt;
  }
  for (const Token* t : items) {
    std::optional<FetchItem> item = ParseItem(*t);
    if (!item) {
      *error = "Invalid fetch attribute";
      if (t->kind != Token::Kind::kList && t->text.size() <= 64) *error += " " + t->text;
      return std::nullopt;
    }
    Add(&spec, std::move(*item));
  }
  return spec;
}

std::string SectionData(const FetchItem& item, const mime::ParsedMessage& message) {
  std::string data = message.SectionBytes(item.section).value_or(std::string());
  if (!item.origin) return data;
  if (*item.origin >= data.size()) return std::string();
  return data.substr(*item.origin, item.count);
}

std::string RenderFetch(uint32_t seq, const MessageInfo& info, const FetchSpec& spec,
                        const mime::ParsedMessage* parsed, bool uid_first, bool add_flags) {
  std::string out = "* " + std::to_string(seq) + " FETCH (";
  auto sep = [&] {
    if (out.back() != '(') out.push_back(' ');
  };
  if (uid_first && !spec.has_uid) out += "UID " + std::to_string(info.uid);
  for (const FetchItem& item : spec.items) {
    sep();
    switch (item.kind) {
      case Kind::kFlags:
        out += "FLAGS " + FlagList(info.flags);
        break;
      case Kind::kInternalDate:
        out += "INTERNALDATE " + FormatInternalDate(info.internal_date_ms, info.internal_date_zone);
        break;
      case Kind::kSize:
        out += "RFC822.SIZE " + std::to_string(info.size);
        break;
      case Kind::kUid:
        out += "UID " + std::to_string(info.uid);
        break;
      case Kind::kEnvelope:
        out += "ENVELOPE " + parsed->Envelope();
        break;
      case Kind::kBody:
        out += "BODY " + parsed->BodyStructure(false);
        break;
      case Kind::kBodyStructure:
        out += "BODYSTRUCTURE " + parsed->BodyStructure(true);
        break;
      case Kind::kSection: {
        // Body data always goes as a literal (or "" when empty): it is
        // rarely quotable and clients expect it.
        std::string data = SectionData(item, *parsed);
        out += item.label + " ";
        out += data.empty() ? "\"\"" : "{" + std::to_string(data.size()) + "}\r\n" + data;
        break;
      }
    }
  }
  if (add_flags && !spec.has_flags) {
    sep();
    out += "FLAGS " + FlagList(info.flags);
  }
  out += ")\r\n";
  return out;
}

}  // namespace porcupine::imap
