#include "mime/address.h"

#include "mime/rfc822_lexer.h"

namespace porcupine::mime {
namespace {

class AddressParser {
 public:
  AddressParser(std::string_view value, const AddressParseOptions& options)
      : lex_(value), options_(options) {}

  std::vector<AddressItem> Run() {
    if (!lex_.SkipCfws() || lex_.AtEnd()) return {};
    while (out_.size() < options_.max_addresses) {
      size_t start = lex_.pos();
      if (!ParseGroup()) {
        lex_.Reset(start);
        ParseMailbox();
      }
      if (!lex_.PeekIs(',')) break;  // end, or trailing garbage we ignore
      lex_.Advance();
      if (!lex_.SkipCfws() || lex_.AtEnd()) break;
    }
    return std::move(out_);
  }

 private:
  bool ParseLocalPart(AddressItem* a) {
    std::string local;
    bool ok = lex_.PeekIs('"') ? lex_.ParseQuotedString(&local)
                               : lex_.ParseDotAtom(&local, /*lenient_dots=*/true);
    if (!ok) return false;
    a->mailbox = std::move(local);
    return true;
  }

  bool ParseHost(AddressItem* a) {
    std::string host;
    if (!lex_.ParseDomain(&host)) return false;
    a->host = std::move(host);
    return true;
  }

  // obs-domain-list: "@" domain *("," [CFWS] "@" domain)
  bool ParseRoute(std::string* route) {
    while (lex_.PeekIs('@')) {
      if (!route->empty()) route->push_back(',');
      route->push_back('@');
      if (!lex_.ParseDomain(route)) return false;
      while (lex_.SkipCfws() && lex_.PeekIs(',')) lex_.Advance();
    }
    return true;
  }

  // "<" [route ":"] [local-part ["@" domain]] ">". False: broken (the
  // caller reports the host as SYNTAX_ERROR, as Dovecot does).
  bool ParseAngleAddr(AddressItem* a) {
    lex_.Advance();  // '<'
    if (!lex_.SkipCfws() || lex_.AtEnd()) return false;
    if (lex_.PeekIs('@')) {
      std::string route;
      if (ParseRoute(&route) && lex_.PeekIs(':')) {
        lex_.Advance();
        a->route = std::move(route);
      } else {
        a->route = "INVALID_ROUTE";
        if (lex_.AtEnd()) return true;
      }
      if (!lex_.SkipCfws()) return false;
      if (lex_.AtEnd()) return true;
    }
    if (!lex_.PeekIs('>')) {  // "<>" has neither mailbox nor host
      if (!ParseLocalPart(a)) return false;
      if (lex_.PeekIs('@') && !ParseHost(a)) return false;
    }
    if (!lex_.PeekIs('>')) return false;
    lex_.Advance();
    return lex_.SkipCfws();
  }

  // [display-name] angle-addr. False: not this form (caller backtracks).
  bool ParseNameAddr(AddressItem* a) {
    std::string name;
    if (!lex_.PeekIs('<') && !lex_.ParsePhrase(&name)) return false;
    if (!lex_.PeekIs('<')) return false;
    if (!name.empty()) a->name = std::move(name);
    if (!ParseAngleAddr(a)) {
      a->host = "SYNTAX_ERROR";
      a->invalid = true;
    }
    return true;
  }

  // local-part "@" domain, with Dovecot's recovery: a trailing comment is the
  // display name ("user@host (Real Name)"), and "Real Name" without any
  // address becomes a name without mailbox.
  void ParseAddrSpec(AddressItem* a) {
    lex_.ClearLastComment();
    bool quoted = lex_.PeekIs('"');
    bool local_ok = ParseLocalPart(a);
    if (!local_ok) a->invalid = true;
    bool tried_host = false;
    if ((local_ok || !lex_.AtEnd()) && lex_.PeekIs('@')) {
      tried_host = true;
      if (!ParseHost(a)) {
        a->invalid = true;
        if (!a->host) a->host = "";  // "user@": still a mailbox, not a name
      }
    }
    if (!lex_.last_comment().empty()) {
      a->name = lex_.last_comment();
    } else if (!tried_host) {
      std::string words = a->mailbox.value_or("");
      words.push_back(' ');
      size_t before = words.size();
      lex_.ParsePhrase(&words);
      if (words.size() != before) {
        a->mailbox.reset();
        a->name = std::move(words);
      } else if (!quoted) {
        a->host = "";
      }
      a->invalid = true;
    }
  }

  void ParseMailbox() {
    size_t start = lex_.pos();
    AddressItem a;
    if (!ParseNameAddr(&a)) {
      lex_.Reset(start);
      a = AddressItem{};
      ParseAddrSpec(&a);
      if (a.invalid && !a.name && a.mailbox && !a.host) {
        a.name = std::move(a.mailbox);
        a.mailbox.reset();
      }
    }
    if (options_.fill_missing) {  // "" too when the syntax was broken ("user", "a@")
      if (!a.mailbox || (a.invalid && a.mailbox->empty())) a.mailbox = "MISSING_MAILBOX";
      if (!a.host || (a.invalid && a.host->empty())) a.host = "MISSING_DOMAIN";
    }
    out_.push_back(std::move(a));
  }

  // display-name ":" [mailbox-list / CFWS] ";". False: not a group.
  bool ParseGroup() {
    std::string name;
    if (!lex_.ParsePhrase(&name) || !lex_.PeekIs(':')) return false;
    lex_.Advance();
    bool more = lex_.SkipCfws() && !lex_.AtEnd();
    AddressItem start;
    start.kind = AddressItem::Kind::kGroupStart;
    start.mailbox = std::move(name);
    out_.push_back(std::move(start));
    if (more && !lex_.PeekIs(';')) {
      while (out_.size() < options_.max_addresses) {
        ParseMailbox();
        if (!lex_.PeekIs(',')) break;
        lex_.Advance();
        if (!lex_.SkipCfws() || lex_.AtEnd()) break;
      }
    }
    if (lex_.PeekIs(';')) {
      lex_.Advance();
      lex_.SkipCfws();
    }
    AddressItem end;
    end.kind = AddressItem::Kind::kGroupEnd;
    out_.push_back(std::move(end));
    return true;
  }

  Rfc822Lexer lex_;
  const AddressParseOptions& options_;
  std::vector<AddressItem> out_;
};

}  // namespace

std::vector<AddressItem> ParseAddressList(std::string_view value,
                                          const AddressParseOptions& options) {
  return AddressParser(value, options).Run();
}

}  // namespace porcupine::mime
