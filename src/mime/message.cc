#include "mime/message.h"

#include <gmime/gmime.h>

#include <mutex>

#include "mime/address.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "mime/imap_format.h"
#include "mime/structure.h"

namespace porcupine::mime {

void Init() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

struct ParsedMessage::Impl {
  std::string raw;  // never moved after parsing: `root` holds views into it
  Part root;
};

namespace {

// Resolves a section part number (RFC 3501 §6.4.5) the way Dovecot does: a
// multipart's n-th child; for any other part only "1", meaning the part
// itself, and further numbers only after a message/rfc822 part (they then
// apply to the encapsulated message). So "1" of a single-part message is its
// body, and "2.1" of a multipart whose part 2 is a leaf is that leaf again.
const Part* Resolve(const Part& root, const std::vector<uint32_t>& path) {
  const Part* cur = &root;
  for (size_t i = 0; i < path.size(); ++i) {
    const uint32_t n = path[i];
    const bool last = i + 1 == path.size();
    const Part* found = cur;
    if (cur->kind == Part::Kind::kMultipart) {
      if (n == 0 || n > cur->children.size()) return nullptr;
      found = &cur->children[n - 1];
    } else if (n != 1 || (!last && cur->kind != Part::Kind::kMessage)) {
      return nullptr;
    }
    cur = (!last && found->kind == Part::Kind::kMessage) ? &found->children.front() : found;
  }
  return cur;
}

bool FieldListed(std::string_view name, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

// The matching fields, byte for byte, then (as Dovecot does) a CRLF for
// HEADER.FIELDS, and for HEADER.FIELDS.NOT the message's own empty line if
// it has one.
std::string HeaderFields(const Part& msg, std::string_view raw, const Section& section) {
  const bool want = section.kind == Section::Kind::kHeaderFields;
  std::string out;
  size_t fields_end = msg.header_begin;
  for (const HeaderField& f : msg.fields) {
    fields_end = static_cast<size_t>(f.raw.data() - raw.data()) + f.raw.size();
    if (FieldListed(f.name, section.fields) == want) out.append(f.raw);
  }
  if (want) {
    out.append("\r\n");
  } else {
    out.append(raw.substr(fields_end, msg.body_begin - fields_end));
  }
  return out;
}

void AppendDecodedText(const Part& part, std::string_view raw, std::string* out) {
  for (const Part& child : part.children) AppendDecodedText(child, raw, out);
  if (part.kind != Part::Kind::kLeaf || !part.IsText()) return;
  std::string_view body = raw.substr(part.body_begin, part.body_size());
  const std::string* charset = part.content.Param("charset");
  std::string decoded = DecodeTransferEncoding(body, part.content.encoding.value_or(""));
  out->append(ToUtf8(decoded, charset ? *charset : std::string_view()));
  out->push_back('\n');
}

std::string AddressesForSearch(std::string_view value) {
  std::string out;
  bool in_group_start = false;
  for (const AddressItem& a : ParseAddressList(value, {.fill_missing = false})) {
    using Kind = AddressItem::Kind;
    if (a.kind == Kind::kGroupEnd) {
      out.push_back(';');
      continue;
    }
    if (!out.empty() && !in_group_start) out.append(", ");
    if (a.kind == Kind::kGroupStart) {
      out.append(DecodePhrase(a.mailbox.value_or(""))).append(": ");
      in_group_start = true;
      continue;
    }
    in_group_start = false;
    std::string spec = a.mailbox.value_or("");
    if (a.host && !a.host->empty()) spec.append("@").append(*a.host);
    if (a.name) {
      out.append(DecodePhrase(*a.name));
      if (!spec.empty()) out.append(" <").append(spec).append(">");
    } else {
      out.append(spec);
    }
  }
  return out;
}

}  // namespace

ParsedMessage::ParsedMessage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ParsedMessage::~ParsedMessage() = default;

std::unique_ptr<ParsedMessage> ParsedMessage::Parse(std::string raw, const ParseLimits& limits) {
  Init();
  auto impl = std::make_unique<Impl>();
  impl->raw = std::move(raw);
  impl->root =
      ParseStructure(impl->raw, {.max_depth = limits.max_depth, .max_parts = limits.max_parts});
  return std::unique_ptr<ParsedMessage>(new ParsedMessage(std::move(impl)));
}

const std::string& ParsedMessage::raw() const { return impl_->raw; }

std::string ParsedMessage::Envelope() const {
  std::string out;
  AppendEnvelope(impl_->root.fields, &out);
  return out;
}

std::string ParsedMessage::BodyStructure(bool extended) const {
  std::string out;
  AppendBodyStructure(impl_->root, extended, &out);
  return out;
}

std::optional<std::string> ParsedMessage::SectionBytes(const Section& section) const {
  const std::string& raw = impl_->raw;
  const Part* part = Resolve(impl_->root, section.part);
  if (!part) return std::nullopt;
  auto bytes = [&](size_t begin, size_t end) { return raw.substr(begin, end - begin); };
  switch (section.kind) {
    case Section::Kind::kAll:
      if (section.part.empty()) return raw;
      return bytes(part->body_begin, part->body_end);
    case Section::Kind::kMime:
      return bytes(part->header_begin, part->body_begin);
    default:
      break;
  }
  // HEADER, HEADER.FIELDS[.NOT] and TEXT of the message, or of the message
  // inside a message/rfc822 part.
  const Part* msg = part;
  if (!section.part.empty()) {
    if (part->kind != Part::Kind::kMessage) return std::nullopt;
    msg = &part->children.front();
  }
  switch (section.kind) {
    case Section::Kind::kHeader:
      return bytes(msg->header_begin, msg->body_begin);
    case Section::Kind::kText:
      return bytes(msg->body_begin, msg->body_end);
    default:
      return HeaderFields(*msg, raw, section);
  }
}

std::vector<std::string> ParsedMessage::HeaderValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const HeaderField& f : impl_->root.fields) {
    if (EqualsIgnoreCase(f.name, name)) values.push_back(DecodeHeaderText(f.value));
  }
  return values;
}

std::string ParsedMessage::DecodedHeaders() const {
  std::string out;
  for (const HeaderField& f : impl_->root.fields) {
    out.append(f.name).append(": ").append(DecodeHeaderText(f.value)).append("\n");
  }
  return out;
}

std::string ParsedMessage::DecodedBodyText() const {
  std::string out;
  AppendDecodedText(impl_->root, impl_->raw, &out);
  return out;
}

std::vector<std::string> ParsedMessage::AddressHeaderValues(std::string_view name) const {
  std::vector<std::string> values;
  for (const HeaderField& f : impl_->root.fields) {
    if (EqualsIgnoreCase(f.name, name)) values.push_back(AddressesForSearch(f.value));
  }
  return values;
}

std::vector<Mailbox> ParsedMessage::Mailboxes(std::string_view name) const {
  std::vector<Mailbox> out;
  for (const HeaderField& f : impl_->root.fields) {
    if (!EqualsIgnoreCase(f.name, name)) continue;
    for (const AddressItem& a : ParseAddressList(f.value, {.fill_missing = false})) {
      if (a.kind != AddressItem::Kind::kMailbox) continue;
      out.push_back({a.name ? DecodePhrase(*a.name) : std::string(), a.mailbox.value_or(""),
                     a.host.value_or("")});
    }
    break;
  }
  return out;
}

std::optional<int64_t> ParsedMessage::SentDateMs() const {
  for (const HeaderField& f : impl_->root.fields) {
    if (!EqualsIgnoreCase(f.name, "date")) continue;
    auto date = ParseDate(f.value);
    if (!date) return std::nullopt;
    return date->utc_ms;
  }
  return std::nullopt;
}

std::optional<int64_t> ParsedMessage::SentDateLocalMs() const {
  for (const HeaderField& f : impl_->root.fields) {
    if (!EqualsIgnoreCase(f.name, "date")) continue;
    auto date = ParseDate(f.value);
    if (!date) return std::nullopt;
    return date->utc_ms + int64_t{date->offset_minutes} * 60000;
  }
  return std::nullopt;
}

}  // namespace porcupine::mime
