// FETCH data items (RFC 3501 §6.4.5): the parsed form of a fetch-att list
// and the rendering of one message's FETCH response. Pure; the session
// (command_fetch.cc) decides which messages, fetches bodies and sets \Seen.
//
// Thread-safety: every function is safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mime/message.h"
#include "protocol/imap/parser.h"
#include "protocol/imap/session.h"

namespace porcupine::imap {

struct FetchItem {
  enum class Kind {
    kFlags,
    kInternalDate,
    kSize,  // RFC822.SIZE
    kEnvelope,
    kBody,  // BODY: the non-extensible BODYSTRUCTURE
    kBodyStructure,
    kUid,
    kSection,  // BODY[...] / BODY.PEEK[...] / RFC822 / RFC822.HEADER / RFC822.TEXT
  };
  Kind kind = Kind::kFlags;
  // kSection only.
  mime::Section section;
  bool peek = false;               // does not set \Seen
  std::optional<uint64_t> origin;  // <origin.count>
  uint64_t count = 0;
  std::string label;  // response name: "BODY[HEADER]", "RFC822.TEXT", ...
};

struct FetchSpec {
  std::vector<FetchItem> items;  // in request order, duplicates kept out
  bool needs_body = false;       // some item needs the message's bytes
  bool sets_seen = false;        // some item implicitly sets \Seen
  bool has_uid = false;
  bool has_flags = false;
};

// Parses FETCH's argument after the sequence set: one atom (a macro
// ALL/FAST/FULL or a single item) or a non-empty list of items. Returns
// nullopt and sets *error on a syntax error. REQUIRES: error != nullptr.
std::optional<FetchSpec> ParseFetchSpec(const Token& att, std::string* error);

// Parses a section spec, the text between '[' and ']' ("", "1.2", "HEADER",
// "1.HEADER.FIELDS (From To)", "2.MIME", "TEXT"); nullopt when malformed.
// *label_out is the canonical form to echo in the response.
std::optional<mime::Section> ParseSection(std::string_view text, std::string* label_out);

// The octets of one section item for one message, partial range applied:
// an absent part gives the empty string.
std::string SectionData(const FetchItem& item, const mime::ParsedMessage& message);

// Renders "* <seq> FETCH (...)\r\n" for one message. `parsed` is required
// when spec.needs_body; `uid_first` adds UID first when the spec lacks it
// (UID FETCH); `add_flags` appends FLAGS when the spec lacks it (\Seen was
// just set).
std::string RenderFetch(uint32_t seq, const MessageInfo& info, const FetchSpec& spec,
                        const mime::ParsedMessage* parsed, bool uid_first, bool add_flags);

}  // namespace porcupine::imap
