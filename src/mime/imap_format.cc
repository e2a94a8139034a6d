#include "mime/imap_format.h"

#include "mime/address.h"

namespace porcupine::mime {
namespace {

// What Dovecot writes for a multipart without any part (not allowed by MIME,
// but BODYSTRUCTURE needs at least one).
constexpr std::string_view kEmptyBody =
    R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0))";
constexpr std::string_view kEmptyBodyStructure =
    R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL))";

// The envelope takes the last of repeated fields, as Dovecot does.
const HeaderField* LastField(const std::vector<HeaderField>& fields, std::string_view name) {
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    if (EqualsIgnoreCase(it->name, name)) return &*it;
  }
  return nullptr;
}

// Every field `name`, in order: Dovecot joins the addresses of repeated
// address fields (while other envelope fields take the last one).
std::vector<AddressItem> Addresses(const std::vector<HeaderField>& fields, std::string_view name) {
  std::vector<AddressItem> items;
  for (const HeaderField& f : fields) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    for (AddressItem& a : ParseAddressList(f.value)) items.push_back(std::move(a));
  }
  return items;
}

void AppendAddressList(const std::vector<AddressItem>& items, std::string* out) {
  if (items.empty()) {
    out->append("NIL");
    return;
  }
  out->push_back('(');
  for (const AddressItem& a : items) {
    out->push_back('(');
    if (a.name) {
      AppendImapHumanString(*a.name, out);
    } else {
      out->append("NIL");
    }
    out->push_back(' ');
    AppendImapNStringNoLf(a.route, out);
    out->push_back(' ');
    AppendImapNStringNoLf(a.mailbox, out);
    out->push_back(' ');
    AppendImapNStringNoLf(a.host, out);
    out->push_back(')');
  }
  out->push_back(')');
}

std::optional<std::string> FieldValue(const std::vector<HeaderField>& fields,
                                      std::string_view name) {
  const HeaderField* f = LastField(fields, name);
  if (!f) return std::nullopt;
  return std::string(f->value);
}

void AppendParams(const std::vector<MimeParam>& params, bool default_charset, std::string* out) {
  if (params.empty() && !default_charset) {
    out->append("NIL");
    return;
  }
  out->push_back('(');
  bool seen_charset = false;
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out->push_back(' ');
    if (EqualsIgnoreCase(params[i].name, "charset")) seen_charset = true;
    AppendImapString(params[i].name, out);
    out->push_back(' ');
    AppendImapString(params[i].value, out);
  }
  if (default_charset && !seen_charset) {
    if (!params.empty()) out->push_back(' ');
    out->append(R"("charset" "us-ascii")");
  }
  out->push_back(')');
}

// body-fld-dsp SP body-fld-lang SP body-fld-loc
void AppendExtensionCommon(const ContentInfo& ct, std::string* out) {
  out->push_back(' ');
  if (!ct.disposition) {
    out->append("NIL");
  } else {
    out->push_back('(');
    AppendImapString(*ct.disposition, out);
    out->push_back(' ');
    AppendParams(ct.disposition_params, false, out);
    out->push_back(')');
  }
  out->push_back(' ');
  if (ct.languages.empty()) {
    out->append("NIL");
  } else {
    out->push_back('(');
    for (size_t i = 0; i < ct.languages.size(); ++i) {
      if (i > 0) out->push_back(' ');
      AppendImapString(ct.languages[i], out);
    }
    out->push_back(')');
  }
  out->push_back(' ');
  AppendImapNStringNoLf(ct.location, out);
}

void AppendPart(const Part& part, bool extended, std::string* out);

void AppendMultipart(const Part& part, bool extended, std::string* out) {
  if (part.children.empty()) out->append(extended ? kEmptyBodyStructure : kEmptyBody);
  for (const Part& child : part.children) {
    out->push_back('(');
    AppendPart(child, extended, out);
    out->push_back(')');
  }
  out->push_back(' ');
  AppendImapString(part.content.subtype, out);
  if (!extended) return;
  out->push_back(' ');
  AppendParams(part.content.params, false, out);
  AppendExtensionCommon(part.content, out);
}

void AppendSinglePart(const Part& part, bool extended, std::string* out) {
  const ContentInfo& ct = part.content;
  const bool message = part.kind == Part::Kind::kMessage;
  const bool text = !message && part.IsText();
  // A multipart or message left unparsed (nested too deep, or "multipart"
  // without subtype) would make clients expect parts: Dovecot calls it
  // application/octet-stream.
  const bool container =
      EqualsIgnoreCase(ct.type, "multipart") ||
      (EqualsIgnoreCase(ct.type, "message") && EqualsIgnoreCase(ct.subtype, "rfc822"));
  if (part.truncated || (!message && container)) {
    out->append(R"("application" "octet-stream")");
  } else if (message || (!ct.present && part.digest_child)) {
    out->append(R"("message" "rfc822")");
  } else if (!ct.present) {
    out->append(R"("text" "plain")");
  } else {
    AppendImapString(ct.type, out);
    out->push_back(' ');
    AppendImapString(ct.subtype, out);
  }
  out->push_back(' ');
  AppendParams(ct.params, text, out);
  out->push_back(' ');
  AppendImapNStringNoLf(ct.id, out);
  out->push_back(' ');
  AppendImapNStringNoLf(ct.description, out);
  out->push_back(' ');
  if (ct.encoding) {
    AppendImapString(*ct.encoding, out);
  } else {
    out->append(R"("7bit")");
  }
  out->append(" ").append(std::to_string(part.body_size()));
  if (text) {
    out->append(" ").append(std::to_string(part.body_lines));
  } else if (message) {
    const Part& child = part.children.front();
    out->push_back(' ');
    AppendEnvelope(child.fields, out);
    out->append(" (");
    AppendPart(child, extended, out);
    out->append(") ").append(std::to_string(part.body_lines));
  }
  if (!extended) return;
  out->push_back(' ');
  AppendImapNStringNoLf(ct.md5, out);
  AppendExtensionCommon(ct, out);
}

void AppendPart(const Part& part, bool extended, std::string* out) {
  if (part.kind == Part::Kind::kMultipart) {
    AppendMultipart(part, extended, out);
  } else {
    AppendSinglePart(part, extended, out);
  }
}

}  // namespace

void AppendImapString(std::string_view s, std::string* out) {
  bool literal = false;
  int escapes = 0;
  for (char c : s) {
    // Like Dovecot: more than four escapes make a literal too.
    if (c == '\r' || c == '\n' || c == '\0' || static_cast<unsigned char>(c) >= 0x80 ||
        ((c == '"' || c == '\\') && ++escapes > 4)) {
      literal = true;
      break;
    }
  }
  if (literal) {
    out->append("{").append(std::to_string(s.size())).append("}\r\n").append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendImapHumanString(std::string_view s, std::string* out) {
  std::string text;
  text.reserve(s.size());
  bool blank = true;  // drops leading blanks; runs become one space
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!blank) text.push_back(' ');
      blank = true;
    } else {
      text.push_back(c == '\0' ? '\x80' : c);
      blank = false;
    }
  }
  if (blank && !text.empty()) text.pop_back();
  bool plain = text == s;
  for (char c : s) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x80) plain = false;
  }
  if (plain || text.empty()) {
    out->append("\"").append(text).append("\"");
  } else {
    out->append("{").append(std::to_string(text.size())).append("}\r\n").append(text);
  }
}

void AppendImapNString(const std::optional<std::string>& s, std::string* out) {
  if (!s) {
    out->append("NIL");
  } else {
    AppendImapString(*s, out);
  }
}

void AppendImapNStringNoLf(const std::optional<std::string>& s, std::string* out) {
  if (!s || s->find_first_of("\r\n") == std::string::npos) {
    AppendImapNString(s, out);
  } else {
    AppendImapString(Unfold(*s), out);
  }
}

void AppendEnvelope(const std::vector<HeaderField>& fields, std::string* out) {
  out->push_back('(');
  AppendImapNStringNoLf(FieldValue(fields, "date"), out);
  out->push_back(' ');
  std::optional<std::string> subject = FieldValue(fields, "subject");
  if (subject) {
    AppendImapHumanString(*subject, out);
  } else {
    out->append("NIL");
  }
  std::vector<AddressItem> from = Addresses(fields, "from");
  for (std::string_view name : {"from", "sender", "reply-to", "to", "cc", "bcc"}) {
    out->push_back(' ');
    std::vector<AddressItem> list = name == "from" ? from : Addresses(fields, name);
    // Sender and Reply-To default to From when absent or empty.
    if (list.empty() && (name == "sender" || name == "reply-to")) list = from;
    AppendAddressList(list, out);
  }
  out->push_back(' ');
  AppendImapNStringNoLf(FieldValue(fields, "in-reply-to"), out);
  out->push_back(' ');
  AppendImapNStringNoLf(FieldValue(fields, "message-id"), out);
  out->push_back(')');
}

void AppendBodyStructure(const Part& part, bool extended, std::string* out) {
  out->push_back('(');
  AppendPart(part, extended, out);
  out->push_back(')');
}

}  // namespace porcupine::mime
