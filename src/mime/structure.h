// Internal to mime/: the MIME tree of a message with exact octet offsets,
// found by scanning the raw bytes with Dovecot's lib-mail rules, so that
// BODY[section] octets and BODYSTRUCTURE sizes match Dovecot's answers:
//  - a boundary line starts with "--" followed by one of the boundaries in
//    effect (this multipart's or any enclosing one's, truncated to 80
//    bytes); the longest wins, the innermost on a tie; anything may follow
//    it on the line, and "--" right after it closes the multipart;
//  - multiparts and messages nested max_depth deep are not parsed; they are
//    reported as application/octet-stream;
//  - the line break before a boundary line belongs to the boundary, except
//    when it ends a close delimiter line ("--b--\r\n--outer");
//  - a boundary line also ends a part's header when no empty line came
//    first, and the header's last line break then belongs to the boundary;
//    so does the empty line of a header that the ending boundary follows
//    directly (an empty body);
//  - Content-* fields count only in MIME parts: parts of a multipart, and
//    headers with MIME-Version or Content-Type;
//  - a multipart without boundary parameter is a multipart without parts;
//  - a part of a multipart/digest without Content-Type is message/rfc822;
//  - message/rfc822 content is parsed as a message whatever its encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "mime/header.h"

namespace porcupine::mime {

struct StructureLimits {
  int max_depth = 100;       // deeper multiparts and messages are opaque leaves
  size_t max_parts = 10000;  // after this many parts boundaries are not looked for
};

struct Part {
  enum class Kind {
    kLeaf,       // anything else (including multiparts nested too deep)
    kMultipart,  // children are the body parts (maybe none)
    kMessage,    // message/rfc822: children[0] is the encapsulated message
  };
  Kind kind = Kind::kLeaf;
  size_t header_begin = 0;    // offsets into the raw message
  size_t body_begin = 0;      // after the empty line ending the header
  size_t body_end = 0;        // exclusive; before the line break preceding a boundary
  uint32_t body_lines = 0;    // LF count in [body_begin, body_end)
  bool digest_child = false;  // default Content-Type is message/rfc822
  bool truncated = false;     // a multipart or message left unparsed (limits)
  std::vector<HeaderField> fields;
  ContentInfo content;
  std::vector<Part> children;

  // The Content-Type in effect is text/* (or absent, outside a digest).
  bool IsText() const;
  size_t body_size() const { return body_end - body_begin; }
};

// Parses `raw` (which must outlive the result: fields are views into it).
// Never fails; any byte string is some message.
Part ParseStructure(std::string_view raw, const StructureLimits& limits);

}  // namespace porcupine::mime
