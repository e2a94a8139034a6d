#include "protocol/imap/search.h"

#include <algorithm>
#include <string_view>

#include "protocol/imap/encode.h"

namespace porcupine::imap {
namespace {

using Op = SearchKey::Op;

// NOT NOT NOT ... and nested lists recurse; bound it well below any stack.
constexpr int kMaxDepth = 64;

// FROM, TO, CC and BCC match the parsed addresses ("Name <a@b>"), as
// Dovecot does; HEADER and SUBJECT the decoded field values.
bool IsAddressField(std::string_view name) {
  return name == "From" || name == "To" || name == "Cc" || name == "Bcc";
}

struct FlagKey {
  std::string_view name;
  Op op;
  std::string_view flag;  // empty for kAll / kNone
};

// Keys without arguments.
constexpr FlagKey kFlagKeys[] = {
    {"ALL", Op::kAll, ""},
    {"ANSWERED", Op::kFlag, "\\Answered"},
    {"DELETED", Op::kFlag, "\\Deleted"},
    {"DRAFT", Op::kFlag, "\\Draft"},
    {"FLAGGED", Op::kFlag, "\\Flagged"},
    {"SEEN", Op::kFlag, "\\Seen"},
    {"UNANSWERED", Op::kNoFlag, "\\Answered"},
    {"UNDELETED", Op::kNoFlag, "\\Deleted"},
    {"UNDRAFT", Op::kNoFlag, "\\Draft"},
    {"UNFLAGGED", Op::kNoFlag, "\\Flagged"},
    {"UNSEEN", Op::kNoFlag, "\\Seen"},
    {"RECENT", Op::kFlag, "\\Recent"},
    {"OLD", Op::kNoFlag, "\\Recent"},
};

struct StringKey {
  std::string_view name;
  Op op;
  std::string_view header;
};

// Keys with one string argument.
constexpr StringKey kStringKeys[] = {
    {"BCC", Op::kHeader, "Bcc"},   {"CC", Op::kHeader, "Cc"},
    {"FROM", Op::kHeader, "From"}, {"SUBJECT", Op::kHeader, "Subject"},
    {"TO", Op::kHeader, "To"},     {"BODY", Op::kBody, ""},
    {"TEXT", Op::kText, ""},
};

struct DateKey {
  std::string_view name;
  Op op;
};

constexpr DateKey kDateKeys[] = {
    {"BEFORE", Op::kBefore},         {"ON", Op::kOn},         {"SINCE", Op::kSince},
    {"SENTBEFORE", Op::kSentBefore}, {"SENTON", Op::kSentOn}, {"SENTSINCE", Op::kSentSince},
};

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, size_t pos) : tokens_(tokens), pos_(pos) {}

  // Every remaining token as one AND.
  std::optional<SearchKey> All() {
    SearchKey and_key;
    and_key.op = Op::kAnd;
    while (pos_ < tokens_.size()) {
      std::optional<SearchKey> k = Key(0);
      if (!k) return std::nullopt;
      and_key.children.push_back(std::move(*k));
    }
    if (and_key.children.empty()) return Fail("Missing search key");
    return and_key;
  }

  const std::string& error() const { return error_; }
  bool needs_body() const { return needs_body_; }

 private:
  std::nullopt_t Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return std::nullopt;
  }

  const Token* Take() { return pos_ < tokens_.size() ? &tokens_[pos_++] : nullptr; }

  std::optional<std::string> String() {
    const Token* t = Take();
    if (t == nullptr || !t->is_astring()) return Fail("Missing string argument");
    return t->text;
  }

  std::optional<SearchKey> Key(int depth) {
    if (depth > kMaxDepth) return Fail("Search program nested too deeply");
    const Token* t = Take();
    if (t == nullptr) return Fail("Missing search key");
    if (t->kind == Token::Kind::kList) return List(*t, depth);
    if (t->kind != Token::Kind::kAtom) return Fail("Search key must be an atom");
    std::string name = ToUpper(t->text);
    SearchKey key;
    if (name == "NEW") return New();
    for (const FlagKey& f : kFlagKeys) {
      if (name != f.name) continue;
      key.op = f.op;
      key.name = std::string(f.flag);
      return key;
    }
    for (const StringKey& s : kStringKeys) {
      if (name != s.name) continue;
      std::optional<SearchKey> k = StringArg(s.op, std::string(s.header));
      if (k) k->address = IsAddressField(s.header);
      return k;
    }
    for (const DateKey& d : kDateKeys) {
      if (name == d.name) return DateArg(d.op);
    }
    if (name == "HEADER") {
      std::optional<std::string> field = String();
      if (!field) return std::nullopt;
      return StringArg(Op::kHeader, *field);
    }
    if (name == "KEYWORD" || name == "UNKEYWORD") return Keyword(name == "KEYWORD");
    if (name == "LARGER" || name == "SMALLER") return Size(name == "LARGER");
    if (name == "NOT") return Not(depth);
    if (name == "OR") return Or(depth);
    if (name == "UID") return Set(Op::kUid, Take());
    std::vector<SeqRange> set = ParseSequenceSet(t->text);
    if (!set.empty()) {
      key.op = Op::kSeq;
      key.set = std::move(set);
      return key;
    }
    return Fail("Unknown search key " + (t->text.size() <= 32 ? t->text : t->text.substr(0, 32)));
  }

  std::optional<SearchKey> List(const Token& list, int depth) {
    Parser inner(list.items, 0);
    SearchKey and_key;
    and_key.op = Op::kAnd;
    while (inner.pos_ < list.items.size()) {
      std::optional<SearchKey> k = inner.Key(depth + 1);
      if (!k) return Fail(inner.error_);
      and_key.children.push_back(std::move(*k));
    }
    needs_body_ |= inner.needs_body_;
    if (and_key.children.empty()) return Fail("Empty search key list");
    return and_key;
  }

  std::optional<SearchKey> StringArg(Op op, std::string header) {
    std::optional<std::string> v = String();
    if (!v) return std::nullopt;
    needs_body_ = true;
    SearchKey key;
    key.op = op;
    key.name = std::move(header);
    key.value = std::move(*v);
    return key;
  }

  std::optional<SearchKey> DateArg(Op op) {
    std::optional<std::string> v = String();
    if (!v) return std::nullopt;
    std::optional<int64_t> day = ParseSearchDate(*v);
    if (!day) return Fail("Invalid date " + v->substr(0, 32));
    if (op == Op::kSentBefore || op == Op::kSentOn || op == Op::kSentSince) needs_body_ = true;
    SearchKey key;
    key.op = op;
    key.number = *day;
    return key;
  }

  std::optional<SearchKey> Keyword(bool set) {
    std::optional<std::string> v = String();
    if (!v) return std::nullopt;
    std::optional<std::string> flag = CanonicalFlag(*v);
    if (!flag) return Fail("Invalid keyword");
    SearchKey key;
    key.op = set ? Op::kFlag : Op::kNoFlag;
    key.name = std::move(*flag);
    return key;
  }

  std::optional<SearchKey> Size(bool larger) {
    const Token* t = Take();
    std::optional<uint64_t> n;
    if (t != nullptr && t->kind == Token::Kind::kAtom) n = ParseNumber64(t->text);
    if (!n) return Fail("Invalid size");
    SearchKey key;
    key.op = larger ? Op::kLarger : Op::kSmaller;
    key.number = static_cast<int64_t>(std::min<uint64_t>(*n, INT64_MAX));
    return key;
  }

  // NEW = RECENT UNSEEN.
  static SearchKey New() {
    SearchKey key;
    key.op = Op::kAnd;
    key.children.resize(2);
    key.children[0].op = Op::kFlag;
    key.children[0].name = "\\Recent";
    key.children[1].op = Op::kNoFlag;
    key.children[1].name = "\\Seen";
    return key;
  }

  std::optional<SearchKey> Not(int depth) {
    std::optional<SearchKey> k = Key(depth + 1);
    if (!k) return std::nullopt;
    SearchKey key;
    key.op = Op::kNot;
    key.children.push_back(std::move(*k));
    return key;
  }

  std::optional<SearchKey> Or(int depth) {
    std::optional<SearchKey> a = Key(depth + 1);
    if (!a) return std::nullopt;
    std::optional<SearchKey> b = Key(depth + 1);
    if (!b) return std::nullopt;
    SearchKey key;
    key.op = Op::kOr;
    key.children.push_back(std::move(*a));
    key.children.push_back(std::move(*b));
    return key;
  }

  std::optional<SearchKey> Set(Op op, const Token* t) {
    std::vector<SeqRange> set;
    if (t != nullptr && t->kind == Token::Kind::kAtom) set = ParseSequenceSet(t->text);
    if (set.empty()) return Fail("Invalid sequence set");
    SearchKey key;
    key.op = op;
    key.set = std::move(set);
    return key;
  }

  const std::vector<Token>& tokens_;
  size_t pos_;
  bool needs_body_ = false;
  std::string error_;
};

Match Not(Match m) {
  if (m == Match::kNeedBody) return m;
  return m == Match::kYes ? Match::kNo : Match::kYes;
}

Match Of(bool b) { return b ? Match::kYes : Match::kNo; }

// \Recent is the session's knowledge, never among the stored flags.
bool HasTargetFlag(const SearchTarget& t, std::string_view flag) {
  if (EqualsIgnoreCase(flag, "\\Recent")) return t.recent;
  return HasFlag(t.info->flags, flag);
}

Match HeaderMatch(const SearchKey& key, const mime::ParsedMessage& m) {
  std::vector<std::string> values =
      key.address ? m.AddressHeaderValues(key.name) : m.HeaderValues(key.name);
  if (key.value.empty()) return Of(!values.empty());
  return Of(std::any_of(values.begin(), values.end(),
                        [&](const std::string& v) { return mime::ContainsFolded(v, key.value); }));
}

Match SentDate(const SearchKey& key, const mime::ParsedMessage& m) {
  std::optional<int64_t> ms = m.SentDateLocalMs();
  if (!ms) return Match::kNo;
  int64_t day = DayOf(*ms);
  if (key.op == Op::kSentBefore) return Of(day < key.number);
  if (key.op == Op::kSentOn) return Of(day == key.number);
  return Of(day >= key.number);
}

// The keys that read the message.
Match MessageKey(const SearchKey& key, const mime::ParsedMessage* m) {
  if (m == nullptr) return Match::kNeedBody;
  switch (key.op) {
    case Op::kHeader:
      return HeaderMatch(key, *m);
    case Op::kBody:
      return Of(mime::ContainsFolded(m->DecodedBodyText(), key.value));
    case Op::kText:
      return Of(mime::ContainsFolded(m->DecodedHeaders(), key.value) ||
                mime::ContainsFolded(m->DecodedBodyText(), key.value));
    default:
      return SentDate(key, *m);
  }
}

Match Combine(const SearchKey& key, const SearchTarget& t, const mime::ParsedMessage* m) {
  bool is_and = key.op == Op::kAnd;
  bool pending = false;
  for (const SearchKey& child : key.children) {
    Match r = Evaluate(child, t, m);
    if (r == Match::kNeedBody) {
      pending = true;
    } else if ((r == Match::kYes) != is_and) {
      return r;  // AND short-circuits on kNo, OR on kYes
    }
  }
  if (pending) return Match::kNeedBody;
  return Of(is_and);
}

}  // namespace

std::optional<SearchProgram> ParseSearch(const std::vector<Token>& args, SearchParseError* error,
                                         std::string* message) {
  *error = SearchParseError::kNone;
  size_t pos = 0;
  if (!args.empty() && args[0].kind == Token::Kind::kAtom &&
      EqualsIgnoreCase(args[0].text, "CHARSET")) {
    if (args.size() < 2 || !args[1].is_astring()) {
      *error = SearchParseError::kSyntax;
      *message = "CHARSET needs a name";
      return std::nullopt;
    }
    if (!EqualsIgnoreCase(args[1].text, "UTF-8") && !EqualsIgnoreCase(args[1].text, "US-ASCII")) {
      *error = SearchParseError::kBadCharset;
      *message = "Unsupported charset";
      return std::nullopt;
    }
    pos = 2;
  }
  Parser p(args, pos);
  std::optional<SearchKey> root = p.All();
  if (!root) {
    *error = SearchParseError::kSyntax;
    *message = p.error();
    return std::nullopt;
  }
  return SearchProgram{std::move(*root), p.needs_body()};
}

Match Evaluate(const SearchKey& key, const SearchTarget& t, const mime::ParsedMessage* m) {
  const MessageInfo& info = *t.info;
  switch (key.op) {
    case Op::kAll:
      return Match::kYes;
    case Op::kNone:
      return Match::kNo;
    case Op::kFlag:
      return Of(HasTargetFlag(t, key.name));
    case Op::kNoFlag:
      return Of(!HasTargetFlag(t, key.name));
    case Op::kBefore:
      return Of(LocalDayOf(info.internal_date_ms, info.internal_date_zone) < key.number);
    case Op::kOn:
      return Of(LocalDayOf(info.internal_date_ms, info.internal_date_zone) == key.number);
    case Op::kSince:
      return Of(LocalDayOf(info.internal_date_ms, info.internal_date_zone) >= key.number);
    case Op::kLarger:
      return Of(info.size > static_cast<uint64_t>(key.number));
    case Op::kSmaller:
      return Of(info.size < static_cast<uint64_t>(key.number));
    case Op::kSeq:
      return Of(InSequenceSet(key.set, t.seq, t.max_seq));
    case Op::kUid:
      return Of(InSequenceSet(key.set, info.uid, t.max_uid));
    case Op::kNot:
      return Not(Evaluate(key.children[0], t, m));
    case Op::kOr:
    case Op::kAnd:
      return Combine(key, t, m);
    case Op::kHeader:
    case Op::kBody:
    case Op::kText:
    case Op::kSentBefore:
    case Op::kSentOn:
    case Op::kSentSince:
      return MessageKey(key, m);
  }
  return Match::kNo;
}

}  // namespace porcupine::imap
