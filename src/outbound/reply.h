// SMTP replies as a client reads them (RFC 5321 §4.2): a pure, incremental
// parser, bytes in at any split, a complete reply or "need more" or a typed
// error out. It never touches a socket.
//
//   reply      = *( code "-" [text] CRLF ) code [ SP text ] CRLF
//   code       = %x32-35 %x30-35 %x30-39        (2yz..5yz, RFC 5321 §4.2)
//
// Every line of one reply must carry the same code. Bare LF ends a line too
// (leniently: some servers send it). When the first line's text starts with
// an RFC 3463 enhanced status code ("5.1.1 ") whose class matches the reply
// code's first digit, it is parsed out (RFC 2034: servers that announce
// ENHANCEDSTATUSCODES put one on every reply but the greeting and EHLO); it
// stays in the line's text as well, for the DSN's Diagnostic-Code.
//
// A parser error means the server's byte stream cannot be trusted any more:
// the caller drops the connection (no QUIT: we would not know which reply
// answers it). Thread-safety: none; one parser per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/line_reader.h"

namespace porcupine::outbound {

// The limits of what a server may send us (docs/outbound.md, "SMTP client").
struct ReplyLimits {
  // Longest reply line including CRLF. RFC 5321 §4.5.3.1.5 says 512; servers
  // exceed it with long explanations and URLs, so we accept four times that
  // (Postfix's client reads up to 2048 too). Longer: a protocol error.
  size_t max_line = 2048;
  // Most lines in one multi-line reply. An EHLO reply lists a dozen or two;
  // a server that keeps sending "250-" is either broken or hostile.
  size_t max_lines = 100;
};

// An RFC 3463 status code: class.subject.detail, e.g. 5.1.1.
struct EnhancedCode {
  int klass = 0;  // 2, 4 or 5
  int subject = 0;
  int detail = 0;
  std::string ToString() const;  // "5.1.1"
  bool operator==(const EnhancedCode&) const = default;
};

// Parses "c.s.d" at the start of `text`, followed by a space or the end.
// Subject and detail are 1..3 digits (RFC 3463 §2). nullopt otherwise.
std::optional<EnhancedCode> ParseEnhancedCode(std::string_view text);

struct Reply {
  int code = 0;                          // 200..559
  std::optional<EnhancedCode> enhanced;  // from the first line, when present and consistent
  std::vector<std::string> lines;        // each line's text after "NNN-" / "NNN "
  // "NNN " + the lines joined by a space: what a DSN's Diagnostic-Code
  // ("smtp; ...") and the logs show.
  std::string Text() const;
  // The enhanced code, or class.0.0 derived from the reply code (RFC 3463
  // §3.1 "other undefined status") when the server gave none.
  EnhancedCode StatusOrDefault() const;
  int Class() const { return code / 100; }  // 2..5
};

class ReplyParser {
 public:
  explicit ReplyParser(const ReplyLimits& limits = {});

  // Appends bytes received from the server.
  void Feed(std::string_view bytes) { lines_.Feed(bytes); }
  // The next complete reply; nullopt when more bytes are needed;
  // InvalidArgument for a malformed line (not a valid code followed by
  // SP, "-" or the end), a code that changes inside a reply, a line over
  // max_line or a reply over max_lines. After an error the parser stays
  // broken: every later call returns an error.
  Result<std::optional<Reply>> Next();
  // Bytes received and not yet returned as part of a complete reply
  // (a half-read reply counts): the session uses it to spot a server that
  // talks out of turn.
  bool HasBuffered() const { return lines_.buffered() > 0 || !partial_.lines.empty(); }
  // Forgets everything buffered (STARTTLS: what came before the handshake
  // must not be read as if it came after; RFC 3207 §4.2).
  void Clear();

 private:
  ReplyLimits limits_;
  protocol::LineReader lines_;
  Reply partial_;  // the lines of a multi-line reply read so far
  std::string error_;
};

}  // namespace porcupine::outbound
